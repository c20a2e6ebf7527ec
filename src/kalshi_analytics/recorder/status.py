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
GAP_HOURS = 24


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


class GapHour(BaseModel):
    """One clock hour of the last day, as the feed gaps tell it."""

    hour_start: datetime
    gaps_started: int = Field(description="feed gaps that began in this hour (any channel or market)")
    gaps_open: int = Field(description="of those, still neither repaired nor given up")
    gaps_repaired: int = Field(description="of those, repaired since")
    seconds_in_gaps: float = Field(
        description="seconds of this hour's recorded part inside at least one feed gap (overlapping gaps counted "
        "once; an open gap runs to now)"
    )
    recorded_seconds: float = Field(
        description="seconds of this hour (to now, for the current hour) since the first recorder of this database "
        "started (or its first feed gap began, if earlier): 0 = nothing recorded yet then"
    )
    coverage: float | None = Field(
        description="share of the recorded part of the hour outside every feed gap: 1 = no gap at all; null = no "
        "recorder had started yet (time a recorder missed later is a gap, so it counts against coverage)"
    )


class RecorderStatus(BaseModel):
    leader: Instance | None
    lag_seconds: float | None = Field(description="age of the leader's last heartbeat (s)")
    commit_lag_p50_seconds: float | None = Field(
        None, description="exchange time → commit, median, as the leader's log and /metrics report it"
    )
    commit_lag_p99_seconds: float | None = Field(None, description="exchange time → commit, 99th percentile")
    messages_per_second: float | None = Field(
        None, description="WebSocket messages the leader received per second, over its last heartbeat interval"
    )
    messages: int | None = Field(None, description="WebSocket messages the leader received since it started")
    rows_written: int | None = Field(None, description="rows the leader's sink committed since it started")
    queue_depth: int | None = Field(None, description="rows waiting in the leader's sink queue")
    rejected: dict[str, int] = Field(
        default_factory=dict,
        description="what the leader refused to store since it started (frames and rows), counted by reason",
    )
    rejected_total: int = Field(0, description="the sum of `rejected`")
    instances: list[Instance]
    open_gaps: int
    recent_gaps: list[Gap]
    gap_hours: list[GapHour] = Field(
        default_factory=list, description=f"the last {GAP_HOURS} clock hours, oldest first, the current one last"
    )


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
    hours = (await conn.execute(text(_GAP_HOURS_SQL), {"hours": GAP_HOURS})).mappings()
    rejected = _info_counts(leader, "rejected")
    return RecorderStatus(
        leader=leader,
        lag_seconds=leader.heartbeat_age_seconds if leader else None,
        commit_lag_p50_seconds=_info_float(leader, "commit_lag_p50_s"),
        commit_lag_p99_seconds=_info_float(leader, "commit_lag_p99_s"),
        messages_per_second=_info_float(leader, "msgs_per_s"),
        messages=_info_int(leader, "messages"),
        rows_written=_info_int(leader, "rows_written"),
        queue_depth=_info_int(leader, "queue_depth"),
        rejected=rejected,
        rejected_total=sum(rejected.values()),
        instances=instances,
        open_gaps=open_gaps,
        recent_gaps=[Gap.model_validate(dict(g)) for g in gaps],
        gap_hours=[GapHour.model_validate(dict(h)) for h in hours],
    )


# Each of the last :hours clock hours (the current one to now): the gaps that began in it, and the part of it inside
# the union of every gap (range_agg merges overlapping gaps; an open gap runs to now). A gap is timed by the exchange's
# clock, which may run a little ahead of the database's: one that begins "after now" counts in the current hour.
# Coverage counts from the first recorder's start (heartbeat rows are never deleted), or the first gap if earlier (a
# gap means something was recording): before that nothing was recorded, which is not "no gap"; after it, time without
# a leader is a gap of its own (the next leader writes it).
# Gaps are few: a scan is fine.
_GAP_HOURS_SQL = """
WITH since AS (
    SELECT coalesce(least((SELECT min(started_at) FROM recorder_heartbeats), (SELECT min(gap_start) FROM feed_gaps)),
                    'infinity'::timestamptz) AS t
), hours AS (
    SELECT h AS hour_start, least(h + interval '1 hour', now()) AS hour_end,
           least(greatest(h, since.t), h + interval '1 hour', now()) AS recorded_from
    FROM since, generate_series(date_trunc('hour', now()) - make_interval(hours => :hours - 1),
                                date_trunc('hour', now()), interval '1 hour') h
), g AS (
    SELECT least(gap_start, now()) AS gap_start,
           greatest(least(gap_start, now()), coalesce(gap_end, now())) AS gap_end, repaired_at, unrepairable_reason
    FROM feed_gaps
    WHERE gap_end IS NULL OR gap_end > date_trunc('hour', now()) - make_interval(hours => :hours - 1)
), missing AS (
    SELECT range_agg(tstzrange(gap_start, gap_end)) AS ranges FROM g
)
SELECT h.hour_start,
       count(g.gap_start) AS gaps_started,
       count(g.gap_start) FILTER (WHERE g.repaired_at IS NULL AND g.unrepairable_reason IS NULL) AS gaps_open,
       count(g.gap_start) FILTER (WHERE g.repaired_at IS NOT NULL) AS gaps_repaired,
       m.seconds AS seconds_in_gaps,
       extract(epoch FROM h.hour_end - h.recorded_from)::float8 AS recorded_seconds,
       CASE WHEN h.hour_end > h.recorded_from
            THEN greatest(0, 1 - m.seconds / extract(epoch FROM h.hour_end - h.recorded_from)::float8)
            END AS coverage
FROM hours h
CROSS JOIN LATERAL (
    SELECT coalesce(sum(extract(epoch FROM upper(r) - lower(r))), 0)::float8 AS seconds
    FROM missing, unnest(missing.ranges * tstzmultirange(tstzrange(h.recorded_from, h.hour_end))) r
) m
LEFT JOIN g ON g.gap_start >= h.hour_start AND g.gap_start < h.hour_start + interval '1 hour'
GROUP BY h.hour_start, h.hour_end, h.recorded_from, m.seconds
ORDER BY h.hour_start
"""


def _info_int(instance: Instance | None, key: str) -> int | None:
    value = (instance.info or {}).get(key) if instance is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _info_counts(instance: Instance | None, key: str) -> dict[str, int]:
    value = (instance.info or {}).get(key) if instance is not None else None
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool)}


def _info_float(instance: Instance | None, key: str) -> float | None:
    value = (instance.info or {}).get(key) if instance is not None else None
    return float(value) if isinstance(value, int | float) else None
