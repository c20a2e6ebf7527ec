"""What gap handling tells a person, without one line per dropped frame.

A lossy feed (5 % of frames dropped) opens a gap every few frames: logged one by one, they bury everything else.
So at INFO come the first gap of each subscription and its repair, and every disconnect (rare, and each one
matters); the rest of a flood comes as one ``feed_gaps_summary`` line per ``summary_seconds`` (gaps, the
subscriptions they hit, repairs). Each gap is still logged at DEBUG, counted in the metrics and written to
``feed_gaps``: the summary is for reading, the table is the record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.rows import GapOpened

log = get_logger(__name__)


class GapLog:
    """The log lines of one :class:`~kalshi_analytics.recorder.gaps.GapRepairer`."""

    def __init__(self, summary_seconds: float = 10.0) -> None:
        self.summary_seconds = summary_seconds
        self._seen: set[str] = set()  # subscriptions whose first gap was logged
        self._told: set[str] = set()  # keys of gaps logged at INFO, so their repair is too
        self._gaps = 0
        self._repaired = 0
        self._scopes: set[str] = set()
        self._window_start = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def opened(self, row: GapOpened) -> None:
        fields = {
            "key": row.key,
            "cause": row.cause,
            "channel": row.channel,
            "sid": row.sid,
            "seq_expected": row.seq_expected,
            "seq_received": row.seq_received,
        }
        scope = f"{row.channel}:{row.sid}"
        if row.sid is None or scope not in self._seen:
            self._seen.add(scope)
            self._told.add(row.key)
            log.info("feed_gap_opened", **fields)
            return
        log.debug("feed_gap_opened", **fields)
        self._gaps += 1
        self._scopes.add(scope)
        self._arm()

    def repaired(self, keys: Sequence[str], **fields: Any) -> None:
        told = self._told.intersection(keys)
        if told:
            self._told.difference_update(told)
            log.info("feed_gap_repaired", keys=len(keys), **fields)
            return
        log.debug("feed_gap_repaired", keys=len(keys), **fields)
        self._repaired += len(keys)
        self._arm()

    def _arm(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._window_start = loop.time()
            self._timer = loop.call_later(self.summary_seconds, self.flush)

    def flush(self) -> None:
        """Log the summary of what was not logged at INFO since the last one (if anything)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._gaps or self._repaired:
            log.info(
                "feed_gaps_summary",
                gaps=self._gaps,
                subscriptions=len(self._scopes),
                repaired=self._repaired,
                seconds=round(asyncio.get_running_loop().time() - self._window_start, 1),
            )
        self._gaps = self._repaired = 0
        self._scopes.clear()
