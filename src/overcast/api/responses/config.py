"""Configuration, capability and discovery responses."""

from __future__ import annotations

from typing import Any

from overcast.api.declare import Field, ResponseObject
from overcast.config.globals import Setting

F = Field


class ConfigurationResponse(ResponseObject):
    object_name = "configuration"
    fields = (
        F("name", "string", "the name of the configuration"),
        F("category", "string", "the category of the configuration"),
        F("value", "string", "the value of the configuration"),
        F("defaultvalue", "string", "the default value of the configuration"),
        F("scope", "string", "scope(zone/cluster/pool/account) of the parameter that needs to be updated"),
        F("id", "long", "the value of the configuration"),
        F("description", "string", "the description of the configuration"),
        F("isdynamic", "boolean", "true if the configuration is dynamic"),
        F("type", "string", "the type of the configuration value"),
        F("component", "string", "the component of the configuration"),
        F("group", "string", "the group of the configuration"),
        F("subgroup", "string", "the subgroup of the configuration"),
        F("displaytext", "string", "the display text of the configuration"),
    )

    @staticmethod
    def of(setting: Setting, value: str | None, scope: str, scope_id: int | None = None) -> dict[str, Any]:
        return {
            "name": setting.name, "category": setting.category, "value": value,
            "defaultvalue": setting.default, "scope": scope, "id": scope_id,
            "description": setting.description, "isdynamic": setting.is_dynamic, "type": setting.type,
            "component": setting.component, "group": setting.category, "subgroup": "Others",
            "displaytext": setting.name.replace(".", " ").capitalize(),
        }  # fmt: skip


class CapabilitiesResponse(ResponseObject):
    object_name = "capability"
    fields = (
        F("cloudstackversion", "string", "version of the cloud stack"),
        F("securitygroupsenabled", "boolean", "true if security groups support is enabled, false otherwise"),
        F("dynamicrolesenabled", "boolean", "true if dynamic role-based api checker is enabled, false otherwise"),
        F("userpublictemplateenabled", "boolean", "true if user and domain admins can set templates to be shared, false otherwise"),
        F("supportELB", "string", "true if region supports elastic load balancer on basic zones"),
        F("projectinviterequired", "boolean", "If invitation confirmation is required when add account to project"),
        F("allowusercreateprojects", "boolean", "true if regular user is allowed to create projects"),
        F("customdiskofferingminsize", "long", "minimum size that can be specified when create disk from disk offering with custom size"),
        F("customdiskofferingmaxsize", "long", "maximum size that can be specified when create disk from disk offering with custom size"),
        F("regionsecondaryenabled", "boolean", "true if region wide secondary is enabled, false otherwise"),
        F("kvmsnapshotenabled", "boolean", "true if snapshot is supported for KVM host, false otherwise"),
        F("allowuserviewdestroyedvm", "boolean", "true if the user is allowed to view destroyed virtualmachines, false otherwise"),
        F("allowuserexpungerecovervm", "boolean", "true if the user can recover and expunge virtualmachines, false otherwise"),
        F("allowuserexpungerecovervolume", "boolean", "true if the user can recover and expunge volumes, false otherwise"),
        F("allowuserviewalldomainaccounts", "boolean", "true if users can see all accounts within the same domain, false otherwise"),
        F("kubernetesserviceenabled", "boolean", "true if Kubernetes Service plugin is enabled, false otherwise"),
        F("kubernetesclusterexperimentalfeaturesenabled", "boolean", "true if experimental features for Kubernetes cluster such as Docker private registry are enabled, false otherwise"),
        F("defaultuipagesize", "long", "default page size in the UI for various views, value set in the configurations"),
        F("apilimitinterval", "integer", "time interval (in seconds) to reset api count"),
        F("apilimitmax", "integer", "Max allowed number of api requests within the specified interval"),
        F("customhypervisordisplayname", "string", "Display name for custom hypervisor"),
    )


class ApiParameterResponse(ResponseObject):
    fields = (
        F("name", "string", "the name of the api parameter"),
        F("description", "string", "description of the api parameter"),
        F("type", "string", "parameter type"),
        F("length", "integer", "length of the parameter"),
        F("required", "boolean", "true if this parameter is required for the api request"),
        F("since", "string", "version of CloudStack the api was introduced in"),
        F("related", "string", "comma separated related apis to get the parameter"),
    )


class ApiResponseResponse(ResponseObject):
    fields = (
        F("name", "string", "the name of the api response field"),
        F("description", "string", "description of the api response field"),
        F("type", "string", "response field type"),
        F("response", "set", "api response fields"),
    )


class ApiDiscoveryResponse(ResponseObject):
    object_name = "api"
    fields = (
        F("name", "string", "the name of the api command"),
        F("description", "string", "description of the api"),
        F("since", "string", "version of CloudStack the api was introduced in"),
        F("isasync", "boolean", "true if api is asynchronous"),
        F("related", "string", "comma separated related apis"),
        F("params", "set", "the list params the api accepts", response=ApiParameterResponse),
        F("response", "set", "api response fields", response=ApiResponseResponse),
        F("type", "string", "response field type"),
    )


class ManagementServerResponse(ResponseObject):
    object_name = "managementserver"
    fields = (
        F("id", "string", "the ID of the management server"),
        F("name", "string", "the name of the management server"),
        F("state", "state", "the state of the management server"),
        F("version", "string", "the version of the management server"),
        F("lastserverstart", "date", "the last time this Management Server was started"),
        F("lastserverstop", "date", "the last time this Management Server was stopped"),
        F("lastboottime", "date", "the last time the host on which this Management Server runs was booted"),
        F("serviceip", "string", "the IP Address for this Management Server"),
    )
