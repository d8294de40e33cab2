"""Failure and delay injections of the simulator hypervisor (configureSimulator)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from overcast.db.models.core import Base, BigId, new_uuid, utcnow


class SimulatorMock(Base):
    """One injection: operation ``command`` answers ``value`` (``result:fail``, ``result:fault``,
    ``wait:<ms>``, ``timeout:<ms>``) within a scope, ``count`` more times (NULL: always)."""

    __tablename__ = "simulator_mock"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(40), unique=True, default=new_uuid)
    command: Mapped[str] = mapped_column(String(255), index=True)
    value: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int | None] = mapped_column(BigId)
    pod_id: Mapped[int | None] = mapped_column(BigId)
    cluster_id: Mapped[int | None] = mapped_column(BigId)
    host_id: Mapped[int | None] = mapped_column(BigId)
    count: Mapped[int | None] = mapped_column(Integer)
    json_response: Mapped[str | None] = mapped_column(Text)
    hits: Mapped[int] = mapped_column(BigInteger, default=0)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


__all__ = ["SimulatorMock"]
