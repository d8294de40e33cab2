"""Action event types, named as CloudStack names them (EventTypes.java)."""

from __future__ import annotations

#: Event type -> the entity type it concerns (listEventTypes answers with the names).
EVENT_TYPES: dict[str, str] = {
    # identity and access
    "USER.LOGIN": "User", "USER.LOGOUT": "User", "USER.CREATE": "User", "USER.DELETE": "User",
    "USER.DISABLE": "User", "USER.UPDATE": "User", "USER.ENABLE": "User", "USER.LOCK": "User",
    "USER.MOVE": "User", "REGISTER.USER.KEY": "User",
    "ACCOUNT.CREATE": "Account", "ACCOUNT.DELETE": "Account", "ACCOUNT.UPDATE": "Account",
    "ACCOUNT.ENABLE": "Account", "ACCOUNT.DISABLE": "Account", "ACCOUNT.LOCK": "Account",
    "DOMAIN.CREATE": "Domain", "DOMAIN.DELETE": "Domain", "DOMAIN.UPDATE": "Domain",
    "ROLE.CREATE": "Role", "ROLE.UPDATE": "Role", "ROLE.DELETE": "Role", "ROLE.IMPORT": "Role",
    "ROLE.PERMISSION.CREATE": "RolePermission", "ROLE.PERMISSION.UPDATE": "RolePermission",
    "ROLE.PERMISSION.DELETE": "RolePermission",
    "CONFIGURATION.VALUE.EDIT": "Configuration",
    # the cloud (used by the engine)
    "VM.CREATE": "VirtualMachine", "VM.DESTROY": "VirtualMachine", "VM.START": "VirtualMachine",
    "VM.STOP": "VirtualMachine", "VM.REBOOT": "VirtualMachine", "VM.UPDATE": "VirtualMachine",
    "VM.UPGRADE": "VirtualMachine", "VM.DYNAMIC.SCALE": "VirtualMachine",
    "VM.RESETPASSWORD": "VirtualMachine", "VM.RESETSSHKEY": "VirtualMachine",
    "VM.MIGRATE": "VirtualMachine", "VM.MOVE": "VirtualMachine", "VM.RESTORE": "VirtualMachine",
    "VM.EXPUNGE": "VirtualMachine", "VM.RECOVER": "VirtualMachine",
    "VOLUME.CREATE": "Volume", "VOLUME.DELETE": "Volume", "VOLUME.ATTACH": "Volume",
    "VOLUME.DETACH": "Volume", "VOLUME.RESIZE": "Volume", "VOLUME.MIGRATE": "Volume",
    "SNAPSHOT.CREATE": "Snapshot", "SNAPSHOT.DELETE": "Snapshot", "SNAPSHOT.REVERT": "Snapshot",
    "TEMPLATE.CREATE": "Template", "TEMPLATE.DELETE": "Template", "TEMPLATE.UPDATE": "Template",
    "TEMPLATE.COPY": "Template", "TEMPLATE.DOWNLOAD.START": "Template",
    "TEMPLATE.DOWNLOAD.SUCCESS": "Template", "TEMPLATE.DOWNLOAD.FAILED": "Template",
    "ISO.CREATE": "Iso", "ISO.DELETE": "Iso", "ISO.ATTACH": "Iso", "ISO.DETACH": "Iso",
    "NETWORK.CREATE": "Network", "NETWORK.DELETE": "Network", "NETWORK.UPDATE": "Network",
    "NETWORK.RESTART": "Network", "NET.IPASSIGN": "IpAddress", "NET.IPRELEASE": "IpAddress",
    "ZONE.CREATE": "Zone", "ZONE.DELETE": "Zone", "ZONE.EDIT": "Zone",
    "POD.CREATE": "Pod", "POD.DELETE": "Pod", "POD.EDIT": "Pod",
    "HOST.RECONNECT": "Host", "MAINT.PREPARE": "Host", "MAINT.CANCEL": "Host",
    "SERVICE.OFFERING.CREATE": "ServiceOffering", "SERVICE.OFFERING.EDIT": "ServiceOffering",
    "SERVICE.OFFERING.DELETE": "ServiceOffering",
    "DISK.OFFERING.CREATE": "DiskOffering", "DISK.OFFERING.EDIT": "DiskOffering",
    "DISK.OFFERING.DELETE": "DiskOffering",
    "SSHKEYPAIR.CREATE": "SSHKeyPair", "SSHKEYPAIR.REGISTER": "SSHKeyPair",
    "SSHKEYPAIR.DELETE": "SSHKeyPair",
    "TAGS.CREATE": "Tag", "TAGS.DELETE": "Tag",
}  # fmt: skip

#: Event states (com.cloud.event.Event.State).
CREATED, SCHEDULED, STARTED, COMPLETED = "Created", "Scheduled", "Started", "Completed"
