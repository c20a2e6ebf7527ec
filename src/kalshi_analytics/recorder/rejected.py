"""What the recorder refused to store, kept: counted by reason, written raw to a JSONL file, summarised in the log.

Two kinds of entries share ``<data dir>/rejected_frames.jsonl``:

- what the exchange client rejected: WS frames (unparseable, out of range, a market we do not track, oversized: a
  prefix) and REST markets/trades with impossible values, ``{"at", "reason", "detail", "raw"}``;
- rows PostgreSQL refused (the sink's bisection isolated them), ``{"at", "reason": "database_refused", "detail",
  "table", "row"}`` with the row's values (a snapshot's include the exchange payload it came from).

Both count in the one metric ``kalshi_recorder_rejected_total{reason}``. The log gets no line per frame (a flood of
bad frames would bury everything else) but one ``rejected_summary`` per ``summary_seconds`` with the counts by reason.
The file rotates to ``<name>.1`` past ``max_bytes``, so disk use stays bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kalshi_analytics.kalshi.errors import KalshiProtocolError
from kalshi_analytics.logs import get_logger
from kalshi_analytics.recorder.metrics import DATABASE_REFUSED, RecorderMetrics

log = get_logger(__name__)


class RejectedLog(deque[KalshiProtocolError]):
    """Takes the WS dispatcher's ``bad_frames`` place (the last ``keep`` in memory) and the sink's rejected rows."""

    def __init__(
        self,
        path: Path | None,
        *,
        metrics: RecorderMetrics | None = None,
        keep: int = 100,
        max_bytes: int = 10 * 2**20,
        summary_seconds: float = 10.0,
    ) -> None:
        super().__init__(maxlen=keep)
        self.path = path
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.summary_seconds = summary_seconds
        self.written = 0
        self.counts: dict[str, int] = {}
        self._window: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None

    def append(self, exc: KalshiProtocolError) -> None:
        super().append(exc)
        self._keep(exc.kind, {"detail": exc.reason, "raw": exc.raw})

    def row_refused(self, table: str, row: Any, error: BaseException) -> None:
        """The sink could not store ``row`` (the database said why): keep its values instead of losing them."""
        detail = f"{type(error).__name__}: {error}"[:2000]
        self._keep(DATABASE_REFUSED, {"detail": detail, "table": table, "row": _fields(row)})

    # ------------------------------------------------------------------------------------------------- internals
    def _keep(self, reason: str, fields: dict[str, Any]) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if self.metrics is not None:
            self.metrics.rejected.labels(reason).inc()
        self._window[reason] = self._window.get(reason, 0) + 1
        self._arm()
        if self.path is None:
            return
        entry = {"at": datetime.now(UTC).isoformat(), "reason": reason, **fields}
        line = json.dumps(entry, ensure_ascii=False, default=_jsonable)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size > self.max_bytes:
                self.path.replace(self.path.with_suffix(self.path.suffix + ".1"))
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            self.written += 1
        except OSError as err:  # a full disk must not stop recording
            log.warning("rejected_log_write_failed", error=repr(err))

    def _arm(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a script replaying frames): no timer to wait for
            self.flush()
            return
        self._timer = loop.call_later(self.summary_seconds, self.flush)

    def flush(self) -> None:
        """Log what was rejected since the last summary (if anything)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._window:
            log.warning("rejected_summary", by_reason=dict(self._window), kept_in=str(self.path) if self.path else None)
            self._window.clear()


def _fields(row: Any) -> Any:
    """A row (NamedTuple or dataclass) as a mapping of its columns; anything else as its repr."""
    if hasattr(row, "_asdict"):
        return row._asdict()
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    return repr(row)


def _jsonable(value: Any) -> Any:
    """Decimals and datetimes as exact text (a float would round a price)."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
