"""The recorder as others see it: its instances and heartbeats, the leader and its lag, the feed gaps."""

from __future__ import annotations

from dataclasses import dataclass
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
    lag_seconds: float | None = Field(description="age of the leader's last heartbeat (s)")
    commit_lag_p50_seconds: float | None = Field(
        None, description="exchange time → commit, median, as the leader's log and /metrics report it"
    )
    commit_lag_p99_seconds: float | None = Field(None, description="exchange time → commit, 99th percentile")
    instances: list[Instance]
    open_gaps: int
    recent_gaps: list[Gap]


@dataclass(frozen=True)
class LeaderBeat:
    """The newest leader heartbeat, as readiness needs it."""

    instance_id: str
    age_seconds: float  # by the database's clock, the one that wrote the heartbeat
    held: int  # rows the leader held unwritten at that beat
    db_down_since: str | None  # set while its sink could not reach the database (a beat written as it came back)


async def leader_heartbeat(conn: AsyncConnection) -> LeaderBeat | None:
    """The newest leader heartbeat, or None when there is none (or no table yet: readiness asks databases that
    are not migrated)."""
    has_beats = (await conn.execute(text("SELECT to_regclass('recorder_heartbeats') IS NOT NULL"))).scalar()
    beat = await latest_leader_heartbeat(conn) if has_beats else None
    if beat is None:
        return None
    row = (
        await conn.execute(
            text(
                "SELECT extract(epoch FROM now() - heartbeat_at)::float8, info FROM recorder_heartbeats "
                "WHERE instance_id = :i"
            ),
            {"i": beat[0]},
        )
    ).one()
    info = row[1] if isinstance(row[1], dict) else {}
    held = info.get("held")
    down = info.get("db_down_since")
    return LeaderBeat(
        instance_id=beat[0],
        age_seconds=float(row[0]),
        held=held if isinstance(held, int) else 0,
        db_down_since=down if isinstance(down, str) else None,
    )


async def recorder_status(conn: AsyncConnection) -> RecorderStatus:
    # A row that says leader without a live lease is a leader that died or was cut off with nobody to take over
    # (a new leader marks the rows of those it replaces ``deposed``): it says ``lapsed`` here.
    rows = (
        await conn.execute(
            text(
                "SELECT instance_id, CASE WHEN h.role = 'leader' AND NOT EXISTS (SELECT 1 FROM recorder_lease l "
                "WHERE l.holder = h.instance_id AND l.lease_until > now()) THEN 'lapsed' ELSE h.role END AS role, "
                "hostname, pid, started_at, heartbeat_at, leader_since, info, "
                "extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_seconds "
                f"FROM recorder_heartbeats h ORDER BY heartbeat_at DESC LIMIT {MAX_INSTANCES}"
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
        commit_lag_p50_seconds=_info_float(leader, "commit_lag_p50_s"),
        commit_lag_p99_seconds=_info_float(leader, "commit_lag_p99_s"),
        instances=instances,
        open_gaps=open_gaps,
        recent_gaps=[Gap.model_validate(dict(g)) for g in gaps],
    )


def _info_float(instance: Instance | None, key: str) -> float | None:
    value = (instance.info or {}).get(key) if instance is not None else None
    return float(value) if isinstance(value, int | float) else None
