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
    "VM.READY": "VirtualMachine",  # Overcast: the guest reported it is configured and ready
    "VOLUME.CREATE": "Volume", "VOLUME.DELETE": "Volume", "VOLUME.ATTACH": "Volume",
    "VOLUME.DETACH": "Volume", "VOLUME.RESIZE": "Volume", "VOLUME.MIGRATE": "Volume",
    "VOLUME.DESTROY": "Volume", "VOLUME.RECOVER": "Volume", "VOLUME.EXPUNGE": "Volume",
    "VOLUME.EXTRACT": "Volume",
    "SNAPSHOT.CREATE": "Snapshot", "SNAPSHOT.DELETE": "Snapshot", "SNAPSHOT.REVERT": "Snapshot",
    "SNAPSHOTPOLICY.CREATE": "SnapshotPolicy", "SNAPSHOTPOLICY.UPDATE": "SnapshotPolicy",
    "SNAPSHOTPOLICY.DELETE": "SnapshotPolicy",
    "VMSNAPSHOT.CREATE": "VMSnapshot", "VMSNAPSHOT.DELETE": "VMSnapshot",
    "VMSNAPSHOT.REVERTTOSNAPSHOT": "VMSnapshot",
    "TEMPLATE.CREATE": "Template", "TEMPLATE.DELETE": "Template", "TEMPLATE.UPDATE": "Template",
    "TEMPLATE.COPY": "Template", "TEMPLATE.DOWNLOAD.START": "Template",
    "TEMPLATE.DOWNLOAD.SUCCESS": "Template", "TEMPLATE.DOWNLOAD.FAILED": "Template",
    "ISO.CREATE": "Iso", "ISO.DELETE": "Iso", "ISO.ATTACH": "Iso", "ISO.DETACH": "Iso",
    "ISO.COPY": "Iso", "ISO.EXTRACT": "Iso", "TEMPLATE.EXTRACT": "Template",
    "NETWORK.OFFERING.CREATE": "NetworkOffering", "NETWORK.OFFERING.EDIT": "NetworkOffering",
    "NETWORK.OFFERING.DELETE": "NetworkOffering",
    "GUEST.OS.ADD": "GuestOS", "GUEST.OS.UPDATE": "GuestOS", "GUEST.OS.REMOVE": "GuestOS",
    "NETWORK.CREATE": "Network", "NETWORK.DELETE": "Network", "NETWORK.UPDATE": "Network",
    "NETWORK.RESTART": "Network", "NET.IPASSIGN": "IpAddress", "NET.IPRELEASE": "IpAddress",
    "SG.CREATE": "SecurityGroup", "SG.DELETE": "SecurityGroup", "SG.AUTH.INGRESS": "SecurityGroup",
    "SG.AUTH.EGRESS": "SecurityGroup", "SG.REVOKE.INGRESS": "SecurityGroup", "SG.REVOKE.EGRESS": "SecurityGroup",
    "NIC.CREATE": "Nic", "NIC.DELETE": "Nic", "NIC.UPDATE": "Nic",
    "ZONE.CREATE": "Zone", "ZONE.DELETE": "Zone", "ZONE.EDIT": "Zone",
    "POD.CREATE": "Pod", "POD.DELETE": "Pod", "POD.EDIT": "Pod",
    "HOST.RECONNECT": "Host", "MAINT.PREPARE": "Host", "MAINT.CANCEL": "Host",
    # infrastructure (zones, hosts, storage, physical networks, ranges) and HA
    "HA.STATE.TRANSITION": "Host", "MAINT.PREPARE.PS": "StoragePool", "MAINT.CANCEL.PS": "StoragePool",
    "UPDATE.PS": "StoragePool", "ENABLE.PS": "StoragePool", "DISABLE.PS": "StoragePool",
    "IMAGE.STORE.MIGRATE.DATA": "ImageStore",
    "VLAN.IP.RANGE.CREATE": "Vlan", "VLAN.IP.RANGE.DELETE": "Vlan", "VLAN.IP.RANGE.DEDICATE": "Vlan",
    "VLAN.IP.RANGE.RELEASE": "Vlan",
    "MANAGEMENT.IP.RANGE.CREATE": "Pod", "MANAGEMENT.IP.RANGE.DELETE": "Pod",
    "PHYSICAL.NETWORK.CREATE": "PhysicalNetwork", "PHYSICAL.NETWORK.DELETE": "PhysicalNetwork",
    "PHYSICAL.NETWORK.UPDATE": "PhysicalNetwork",
    "SERVICE.PROVIDER.CREATE": "PhysicalNetworkServiceProvider",
    "SERVICE.PROVIDER.DELETE": "PhysicalNetworkServiceProvider",
    "SERVICE.PROVIDER.UPDATE": "PhysicalNetworkServiceProvider",
    "TRAFFIC.TYPE.CREATE": "PhysicalNetworkTrafficType", "TRAFFIC.TYPE.DELETE": "PhysicalNetworkTrafficType",
    "TRAFFIC.TYPE.UPDATE": "PhysicalNetworkTrafficType",
    "NETWORK.ELEMENT.CONFIGURE": "VirtualRouterProvider",
    "SERVICE.OFFERING.CREATE": "ServiceOffering", "SERVICE.OFFERING.EDIT": "ServiceOffering",
    "SERVICE.OFFERING.DELETE": "ServiceOffering",
    "DISK.OFFERING.CREATE": "DiskOffering", "DISK.OFFERING.EDIT": "DiskOffering",
    "DISK.OFFERING.DELETE": "DiskOffering",
    "REGISTER.SSH.KEYPAIR": "SSHKeyPair",
    "CREATE_TAGS": "ResourceTag", "DELETE_TAGS": "ResourceTag",
    "AG.CREATE": "AffinityGroup", "AG.DELETE": "AffinityGroup", "VM.AG.UPDATE": "VirtualMachine",
    # Overcast's own (CloudStack records no event for these actions)
    "SSHKEYPAIR.CREATE": "SSHKeyPair", "SSHKEYPAIR.DELETE": "SSHKeyPair",
    "VMGROUP.CREATE": "InstanceGroup", "VMGROUP.UPDATE": "InstanceGroup", "VMGROUP.DELETE": "InstanceGroup",
    "RESOURCE.LIMIT.UPDATE": "ResourceLimit",
    # bundles (an Overcast extension) and registered user data
    "BUNDLE.CREATE": "Bundle", "BUNDLE.UPDATE": "Bundle", "BUNDLE.DELETE": "Bundle",
    "REGISTER.USER.DATA": "UserData",
    # the built-in KV storage (the Generic KV Storage extension's EventTypes)
    "STORAGE.KV.CREATE": "KvStorage", "STORAGE.KV.DELETE": "KvStorage",
}  # fmt: skip

#: Event states (com.cloud.event.Event.State).
CREATED, SCHEDULED, STARTED, COMPLETED = "Created", "Scheduled", "Started", "Completed"
