"""Fault injection settings and the log of every WebSocket data frame the simulator sent or dropped."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """What to break, changeable at run time (``Simulator.set_faults`` or ``POST /_sim/faults``).

    Fractions are probabilities per message / per request, drawn from a generator seeded with the model's seed.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    ws_drop_fraction: float = Field(0.0, ge=0.0, le=1.0, description="drop this share of WS data frames (seq used)")
    ws_disconnect_every: float | None = Field(
        None, gt=0, description="close every WS connection this many real seconds after it was opened"
    )
    ws_silence: bool = Field(False, description="keep WS connections open but send nothing (no data, no pings)")
    rate_limit_fraction: float = Field(0.0, ge=0.0, le=1.0, description="answer this share of REST requests 429")
    rate_limit_storm_until: float | None = Field(
        None, description="answer every REST request 429 until this monotonic time (set via *_storm_seconds)"
    )
    server_error_fraction: float = Field(0.0, ge=0.0, le=1.0, description="answer this share of REST requests 5xx")
    truncate_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="cut this share of REST response bodies in half (a broken transfer)"
    )
    rest_stale_seconds: float = Field(
        0.0, ge=0.0, le=3600, description="serve REST GETs from a per-URL cache until this old, like Kalshi's CDN"
    )
    latency_ms: float = Field(0.0, ge=0.0, le=60_000, description="add this delay to every REST response")
    latency_jitter_ms: float = Field(0.0, ge=0.0, le=60_000, description="plus a uniform random 0..jitter")

    def update(self, changes: dict[str, Any], now: float) -> Faults:
        """A copy with ``changes`` applied; ``rate_limit_storm_seconds`` starts a storm of that many seconds."""
        data = self.model_dump()
        changes = dict(changes)
        storm = changes.pop("rate_limit_storm_seconds", None)
        if storm is not None:
            data["rate_limit_storm_until"] = now + float(storm) if float(storm) > 0 else None
        data.update(changes)
        return Faults.model_validate(data)


class LogEntry(NamedTuple):
    """One WebSocket data frame: ``dropped`` frames consumed their ``seq`` but never reached the socket."""

    conn: int
    sid: int
    seq: int
    type: str
    market_ticker: str
    trade_id: str | None
    dropped: bool

    def as_json(self) -> dict[str, Any]:
        return self._asdict()


class MessageLog:
    """Bounded in-memory log of WS data frames plus running totals (totals are never trimmed)."""

    def __init__(self, maxlen: int = 2_000_000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)
        self.total = 0
        self.sent = 0
        self.dropped = 0

    def append(self, entry: LogEntry) -> None:
        self._entries.append(entry)
        self.total += 1
        if entry.dropped:
            self.dropped += 1
        else:
            self.sent += 1

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def first_index(self) -> int:
        """Absolute index of the oldest entry still held."""
        return self.total - len(self._entries)

    def entries(
        self, conn: int | None = None, sid: int | None = None, since: int = 0, dropped: bool | None = None
    ) -> Iterator[LogEntry]:
        """Entries with absolute index ≥ ``since``, optionally of one connection / sid / drop state."""
        skip = max(0, since - self.first_index)
        for i, e in enumerate(self._entries):
            if i < skip:
                continue
            if conn is not None and e.conn != conn:
                continue
            if sid is not None and e.sid != sid:
                continue
            if dropped is not None and e.dropped != dropped:
                continue
            yield e

    def dropped_seqs(self, conn: int, sid: int) -> list[int]:
        return [e.seq for e in self.entries(conn, sid, dropped=True)]

    def clear(self) -> None:
        self._entries.clear()
