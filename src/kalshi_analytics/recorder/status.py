"""The recorder as others see it: its instances and heartbeats, the leader and its lag, the feed gaps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from kalshi_analytics.recorder.leader import latest_leader_heartbeat

MAX_INSTANCES = 100
RECENT_GAPS = 50


class Instance(BaseModel):
    instance_id: str
    role: str
    hostname: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    leader_since: datetime | None
    info: dict[str, Any] | None


class Gap(BaseModel):
    id: int
    detected_at: datetime
    channel: str
    market_ticker: str | None
    cause: str
    gap_start: datetime
    gap_end: datetime | None
    repaired_at: datetime | None
    repair_method: str | None


class RecorderStatus(BaseModel):
    leader: Instance | None
    lag_seconds: float | None = Field(description="age of the leader's last heartbeat")
    instances: list[Instance]
    open_gaps: int
    recent_gaps: list[Gap]


async def leader_heartbeat_age(conn: AsyncConnection) -> tuple[str, float] | None:
    """``(instance_id, seconds)`` since the newest leader heartbeat, or None when there is none (or no table yet:
    readiness asks databases that are not migrated)."""
    has_beats = (await conn.execute(text("SELECT to_regclass('recorder_heartbeats') IS NOT NULL"))).scalar()
    beat = await latest_leader_heartbeat(conn) if has_beats else None
    if beat is None:
        return None
    # Age by the database's clock, the one that wrote the heartbeat.
    age = (await conn.execute(text("SELECT extract(epoch FROM now() - :t)"), {"t": beat[1]})).scalar_one()
    return beat[0], float(age)


async def recorder_status(conn: AsyncConnection) -> RecorderStatus:
    rows = (
        await conn.execute(
            text(
                "SELECT instance_id, role, hostname, pid, started_at, heartbeat_at, leader_since, info, "
                "extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_seconds "
                f"FROM recorder_heartbeats ORDER BY heartbeat_at DESC LIMIT {MAX_INSTANCES}"
            )
        )
    ).mappings()
    instances = [Instance.model_validate(dict(r)) for r in rows]
    leader = next((i for i in instances if i.role == "leader"), None)
    gaps = (
        await conn.execute(
            text(
                "SELECT id, detected_at, channel, market_ticker, cause, gap_start, gap_end, repaired_at, repair_method "
                f"FROM feed_gaps ORDER BY gap_start DESC LIMIT {RECENT_GAPS}"
            )
        )
    ).mappings()
    # Open = neither repaired nor given up with a reason (an unrepairable gap is closed, not open).
    open_sql = "SELECT count(*) FROM feed_gaps WHERE repaired_at IS NULL AND unrepairable_reason IS NULL"
    open_gaps = (await conn.execute(text(open_sql))).scalar_one()
    return RecorderStatus(
        leader=leader,
        lag_seconds=leader.heartbeat_age_seconds if leader else None,
        instances=instances,
        open_gaps=open_gaps,
        recent_gaps=[Gap.model_validate(dict(g)) for g in gaps],
    )
