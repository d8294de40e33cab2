"""Template and ISO responses (TemplateResponse, as TemplateJoinDaoImpl fills it), permissions, extraction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from overcast.access.caller import Caller
from overcast.api.declare import Field, ResponseObject
from overcast.api.responses.common import Owners, ResourceTagResponse, tags_for
from overcast.api.serialize import cs_date
from overcast.db.models import GuestOs, ImageStore, Template, TemplateZone, UserData, Zone
from overcast.engine.templates import checksum_value

F = Field


class TemplateResponse(ResponseObject):
    object_name = "template"
    fields = (
        F("id", "string", "the template ID"),
        F("name", "string", "the template name"),
        F("displaytext", "string", "the template display text"),
        F("ispublic", "boolean", "true if this template is a public template, false otherwise"),
        F("created", "date", "the date this template was created"),
        F("removed", "date", "the date this template was removed"),
        F("isready", "boolean", "true if the template is ready to be deployed from, false otherwise."),
        F("passwordenabled", "boolean", "true if the reset password feature is enabled, false otherwise"),
        F("format", "string", "the format of the template."),
        F("bootable", "boolean", "true if the ISO is bootable, false otherwise"),
        F("isfeatured", "boolean", "true if this template is a featured template, false otherwise"),
        F("crossZones", "boolean", "true if the template is managed across all Zones, false otherwise"),
        F("ostypeid", "string", "the ID of the OS type for this template."),
        F("ostypename", "string", "the name of the OS type for this template."),
        F("accountid", "string", "the account id to which the template belongs"),
        F("account", "string", "the account name to which the template belongs"),
        F("zoneid", "string", "the ID of the zone for this template"),
        F("zonename", "string", "the name of the zone for this template"),
        F("status", "string", "the status of the template"),
        F("size", "long", "the size of the template"),
        F("physicalsize", "long", "the physical size of the template"),
        F("templatetype", "string", "the type of the template"),
        F("hypervisor", "string", "the hypervisor on which the template runs"),
        F("domain", "string", "the name of the domain to which the template belongs"),
        F("domainid", "string", "the ID of the domain to which the template belongs"),
        F("domainpath", "string", "path of the Domain the template belongs to"),
        F("isextractable", "boolean", "true if the template is extractable, false otherwise"),
        F("checksum", "string", "checksum of the template"),
        F("sourcetemplateid", "string", "the template ID of the parent template if present"),
        F("templatetag", "string", "the tag of this template"),
        F("url", "string", "the URL which the template/iso is registered from"),
        F("details", "map", "additional key/value details tied with template"),
        F("downloaddetails", "list", "Lists the download progress of a template across all secondary storages"),
        F("arch", "string", "CPU Arch of the template"),
        F("bits", "integer", "the processor bit size"),
        F("sshkeyenabled", "boolean", "true if template is sshkey enabled, false otherwise"),
        F("isdynamicallyscalable", "boolean", "true if template contains XS/VMWare tools inorder to support dynamic"
          " scaling of VM cpu/memory"),
        F("directdownload", "boolean", "KVM Only: true if template is directly downloaded to Primary Storage"
          " bypassing Secondary Storage"),
        F("deployasis", "boolean", "VMware only: true if template is deployed without orchestrating disks and"
          " networks but \"as-is\" defined in the template."),
        F("forcks", "boolean", "If true it indicates that the template can be used for CKS cluster deployments"),
        F("requireshvm", "boolean", "true if template requires HVM enabled, false otherwise"),
        F("hasannotations", "boolean", "whether this template has annotations"),
        F("tags", "set", "the list of resource tags associated", response=ResourceTagResponse),
        F("userdataid", "string", "the id of userdata linked to this template"),
        F("userdataname", "string", "the name of userdata linked to this template"),
        F("userdatapolicy", "string", "the userdata override policy with the userdata provided while deploying"
          " VM"),
        F("userdataparams", "string", "list of parameters which contains the list of keys or string parameters"
          " that are needed to be passed for any variables declared in userdata"),
    )


class IsoResponse(TemplateResponse):
    object_name = "iso"


class TemplatePermissionsResponse(ResponseObject):
    object_name = "templatepermission"
    fields = (
        F("id", "string", "the template ID"),
        F("ispublic", "boolean", "true if this template is a public template, false otherwise"),
        F("domainid", "string", "the ID of the domain to which the template belongs"),
        F("account", "list", "the list of accounts the template is available for"),
    )


class IsoPermissionsResponse(TemplatePermissionsResponse):
    object_name = "isopermission"


class ExtractResponse(ResponseObject):
    object_name = "template"
    fields = (
        F("id", "string", "the id of extracted object"),
        F("name", "string", "the name of the extracted object"),
        F("extractId", "string", "the upload id of extracted object"),
        F("uploadpercentage", "integer", "the percentage of the entity uploaded to the specified location"),
        F("status", "string", "the status of the extraction"),
        F("accountid", "string", "the account id to which the extracted object belongs"),
        F("resultstring", "string", ""),
        F("created", "date", "the time and date the object was created"),
        F("state", "string", "the state of the extracted object"),
        F("storagetype", "string", "type of the storage"),
        F("zoneid", "string", "zone ID the object was extracted from"),
        F("zonename", "string", "zone name the object was extracted from"),
        F("extractMode", "string", "the mode of extraction - upload or download"),
        F("url", "string", "if mode = upload then url of the uploaded entity. if mode = download the url from"
          " which the entity can be downloaded"),
    )


class GetUploadParamsResponse(ResponseObject):
    object_name = "getuploadparams"
    fields = (
        F("id", "string", "the template/volume ID"),
        F("postURL", "string", "POST url to upload the file to"),
        F("metadata", "string", "encrypted data to be sent in the POST request."),
        F("expires", "string", "the timestamp after which the signature expires"),
        F("signature", "string", "signature to be sent in the POST request."),
    )


class ExtractIsoResponse(ExtractResponse):
    object_name = "iso"


class ExtractVolumeResponse(ExtractResponse):
    object_name = "volume"


def template_status(t: Template, ref: TemplateZone | None) -> str | None:
    """TemplateJoinDaoImpl.getTemplateStatus (templates) and newIsoResponse's (ISOs)."""
    iso = t.format == "ISO"
    if ref is None:
        return None
    if ref.download_state == "DOWNLOADED":
        return "Successfully Installed" if iso else "Download Complete"
    if ref.download_state == "DOWNLOAD_IN_PROGRESS":
        if ref.download_pct == 100:
            return "Installing ISO" if iso else "Installing Template"
        return f"{ref.download_pct}% Downloaded"
    if ref.download_state == "BYPASSED":
        return "Bypassed Secondary Storage"
    if ref.error_str is None:
        return None if iso else t.state
    return ref.error_str if iso else ref.error_str.strip()


def template_payload(s: Session, rows: list[tuple[Template, TemplateZone | None]], caller: Caller
                     ) -> list[dict[str, Any]]:
    """Wire dicts for (template, zone ref) rows: one object per template and zone, as CloudStack lists them."""
    if not rows:
        return []
    templates = {t.id: t for t, _ in rows}
    owners = Owners(s, templates.values())

    def load(model: Any, ids: set[int]) -> dict[int, Any]:
        ids = {i for i in ids if i}
        return {r.id: r for r in s.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

    zones = load(Zone, {r.zone_id for _, r in rows if r is not None})
    stores = load(ImageStore, {r.store_id or 0 for _, r in rows if r is not None})
    oses = load(GuestOs, {t.guest_os_id or 0 for t in templates.values()})
    sources = load(Template, {t.source_template_id or 0 for t in templates.values()})
    linked = load(UserData, {t.userdata_id or 0 for t in templates.values()})
    tmpl_ids = [i for i, t in templates.items() if t.format != "ISO"]
    iso_ids = [i for i, t in templates.items() if t.format == "ISO"]
    tags = {**tags_for(s, "Template", tmpl_ids), **tags_for(s, "ISO", iso_ids)}
    out = []
    for t, ref in rows:
        iso = t.format == "ISO"
        zone = zones.get(ref.zone_id) if ref is not None else None
        os_ = oses.get(t.guest_os_id or 0)
        own = owners.fields(t)
        owner_view = t.account_id == caller.account_id
        full = caller.is_admin if iso else caller.is_root_admin
        ready = t.format == "BAREMETAL" or (ref is not None and ref.state == "Ready")
        item: dict[str, Any] = {
            "id": t.uuid, "name": t.name, "displaytext": t.display_text, "ispublic": t.is_public,
            "created": cs_date(ref.created if ref is not None else t.created), "removed": cs_date(t.removed),
            "isready": ready, "passwordenabled": t.password_enabled, "isfeatured": t.featured,
            "crossZones": t.cross_zones, "ostypeid": os_.uuid if os_ else None,
            "ostypename": os_.display_name if os_ else None, "account": own["account"], "accountid": own["accountid"],
            "domain": own["domain"], "domainid": own["domainid"], "domainpath": own["domainpath"],
            "zoneid": zone.uuid if zone else None, "zonename": zone.name if zone else None,
            "size": t.size if t.size > 0 else None, "checksum": checksum_value(t.checksum),
            "isdynamicallyscalable": t.dynamically_scalable, "directdownload": t.direct_download,
            "bits": t.bits, "arch": t.arch, "hasannotations": False, "tags": tags.get(t.id, []),
        }  # fmt: skip
        ud = linked.get(t.userdata_id or 0)
        if ud is not None:
            item.update({"userdataid": ud.uuid, "userdataname": ud.name, "userdatapolicy": t.userdata_policy,
                         "userdataparams": ud.params})
        if full or owner_view:
            item["status"] = template_status(t, ref)
            item["url"] = t.url
        if iso:
            item.update({"bootable": t.bootable, "isextractable": t.extractable and t.template_type != "PERHOST"})
            if t.template_type == "PERHOST":
                item["isready"] = True
        else:
            physical = (ref.physical_size if ref is not None and ref.physical_size else 0) or t.physical_size
            store = stores.get(ref.store_id or 0) if ref is not None else None
            src = sources.get(t.source_template_id or 0)
            item.update({
                "format": t.format, "templatetype": t.template_type, "hypervisor": t.hypervisor_type,
                "isextractable": t.extractable and t.template_type != "SYSTEM",
                "physicalsize": physical if physical > 0 else None, "sourcetemplateid": src.uuid if src else None,
                "templatetag": t.template_tag, "details": json.loads(t.details) if t.details else {},
                "downloaddetails": [{"datastore": store.name, "downloadPercent": str(ref.download_pct),
                                     "downloadState": ref.download_state}] if store is not None and ref is not None
                and ref.download_state != "BYPASSED" else [],
                "sshkeyenabled": t.sshkey_enabled, "deployasis": False, "forcks": False,
                "requireshvm": t.requires_hvm,
            })  # fmt: skip
        out.append(item)
    return out


__all__ = [
    "ExtractIsoResponse", "ExtractResponse", "ExtractVolumeResponse", "IsoPermissionsResponse", "IsoResponse", "TemplatePermissionsResponse",
    "GetUploadParamsResponse", "TemplateResponse", "template_payload", "template_status",
]  # fmt: skip
