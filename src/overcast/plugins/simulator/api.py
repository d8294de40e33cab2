"""The simulator's own API commands (a plug-in: loaded through the ``overcast.api.commands`` entry points).

``configureSimulator`` injects failures and delays into the simulated hypervisor, as CloudStack's
simulator does (``ConfigureSimulatorCmd``): ``name`` is the agent command (``StartCommand``,
``PingCommand``...), ``value`` what it answers (``result:fail``, ``result:fault``, ``wait:<ms>``,
``timeout:<ms>``), optionally ``count`` times and within a zone, pod, cluster or host.
``querySimulatorMock`` shows an injection and how many uses it has left; ``cleanupSimulatorMock`` ends it.

As in CloudStack the mock ``id`` is a number; the scope ids are the UUIDs of the zone, pod, cluster, host.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from overcast.access.roles import ROOT_ADMIN
from overcast.api.context import CallContext
from overcast.api.declare import (
    INTEGER, LONG, STRING, UUID, Command, Field, ObjectResult, Param, ResponseObject, Result, Success,
    SuccessResponse, api_command,
)  # fmt: skip
from overcast.db.models import Cluster, Host, Pod, SimulatorMock, Zone, utcnow
from overcast.errors import InvalidParameterValue

F = Field
_COMMAND = re.compile(r"^[A-Za-z][A-Za-z0-9_.$]*$")
_PART = re.compile(r"^(result:(fail|fault|success)|wait:\d+|timeout:\d+|enabled:(true|false)|message:.*)$", re.IGNORECASE)


class MockResponse(ResponseObject):
    object_name = "simulatormock"
    fields = (
        F("id", "long", "The mock ID"),
        F("zoneid", "string", "The Zone ID scope of the mock"),
        F("podid", "string", "The Pod ID scope of the mock"),
        F("clusterid", "string", "The Cluster ID scope of the mock"),
        F("hostid", "string", "The Host ID scope of the mock"),
        F("name", "string", "The agent command to be mocked"),
        F("count", "integer", "Number of times mock is executed, if not specified then mock remains active till"
          " cleaned up"),
    )


def mock_payload(ctx: CallContext, mock: SimulatorMock) -> dict[str, Any]:
    s = ctx.session

    def uuid_of(model: Any, row_id: int | None) -> str | None:
        row = s.get(model, row_id) if row_id else None
        return row.uuid if row is not None else None

    return {
        "id": mock.id, "zoneid": uuid_of(Zone, mock.zone_id), "podid": uuid_of(Pod, mock.pod_id),
        "clusterid": uuid_of(Cluster, mock.cluster_id), "hostid": uuid_of(Host, mock.host_id),
        "name": mock.command, "count": mock.count,
    }  # fmt: skip


def validate_value(value: str) -> str:
    parts = [p.strip() for p in value.split(";") if p.strip()]
    if not parts or not all(_PART.match(p) for p in parts):
        raise InvalidParameterValue(f"Invalid value {value} for parameter value: use result:fail, result:fault,"
                                    " wait:<ms> or timeout:<ms>, separated by ;")
    return ";".join(parts)


@api_command("configureSimulator", response=MockResponse, roles=ROOT_ADMIN, description="configure simulator")
class ConfigureSimulator(Command):
    zone = Param(UUID, "zoneid", entity=Zone, description="configure range: in a zone")
    pod = Param(UUID, "podid", entity=Pod, description="configure range: in a pod")
    cluster = Param(UUID, "clusterid", entity=Cluster, description="configure range: in a cluster")
    host = Param(UUID, "hostid", entity=Host, description="configure range: in a host")
    name = Param(STRING, required=True, description="which command needs to be configured")
    value = Param(STRING, required=True, description="configuration options for this command, which is"
                  " separated by ;")
    count = Param(INTEGER, min_value=1, description="number of times the mock is active")
    json_response = Param(STRING, "jsonresponse", length=4096, description="agent command response to be"
                          " returned")

    def execute(self, ctx: CallContext) -> Result:
        name = self.name.strip()
        if not _COMMAND.match(name):
            raise InvalidParameterValue(f"Invalid value {self.name} for parameter name: give an agent command such"
                                        " as StartCommand or PingCommand")
        value = validate_value(self.value)
        zone, pod, cluster, host = self.zone, self.pod, self.cluster, self.host
        # A narrower scope implies the wider ones, and they must agree.
        if host is not None:
            for given, have, what in ((cluster, host.cluster_id, "clusterid"), (pod, host.pod_id, "podid"),
                                      (zone, host.zone_id, "zoneid")):
                if given is not None and given.id != have:
                    raise InvalidParameterValue(f"Host {host.name} is not in the {what} given")
        if cluster is not None:
            for given, have, what in ((pod, cluster.pod_id, "podid"), (zone, cluster.zone_id, "zoneid")):
                if given is not None and given.id != have:
                    raise InvalidParameterValue(f"Cluster {cluster.name} is not in the {what} given")
        if pod is not None and zone is not None and pod.zone_id != zone.id:
            raise InvalidParameterValue(f"Pod {pod.name} is not in the zoneid given")
        json_response = self.json_response
        if host is not None and json_response is not None:
            json_response = json_response.replace('"hostId":0', f'"hostId":{host.id}')
        mock = SimulatorMock(command=name, value=value, zone_id=zone.id if zone else None,
                             pod_id=pod.id if pod else None, cluster_id=cluster.id if cluster else None,
                             host_id=host.id if host else None, count=self.count, json_response=json_response)
        ctx.session.add(mock)
        ctx.session.flush()
        return ObjectResult(mock_payload(ctx, mock))


def _mock(ctx: CallContext, mock_id: int | None) -> SimulatorMock:
    if mock_id is None:
        raise InvalidParameterValue("Please specify the id of the mock (parameter id)")
    mock = ctx.session.scalar(select(SimulatorMock).where(SimulatorMock.id == mock_id,
                                                          SimulatorMock.removed.is_(None)))
    if mock is None:
        raise InvalidParameterValue(f"Unable to find simulator mock {mock_id} (parameter id)")
    return mock


@api_command("querySimulatorMock", response=MockResponse, roles=ROOT_ADMIN, read_only=True,
             description="Query simulator mock")
class QuerySimulatorMock(Command):
    id = Param(LONG, description="ID of the configured mock")

    def execute(self, ctx: CallContext) -> Result:
        return ObjectResult(mock_payload(ctx, _mock(ctx, self.id)))


@api_command("cleanupSimulatorMock", response=SuccessResponse, roles=ROOT_ADMIN,
             description="Cleanup simulator mock")
class CleanupSimulatorMock(Command):
    id = Param(LONG, description="Id of the configured mock")

    def execute(self, ctx: CallContext) -> Result:
        _mock(ctx, self.id).removed = utcnow()
        return Success()


__all__ = ["ConfigureSimulator", "MockResponse"]
