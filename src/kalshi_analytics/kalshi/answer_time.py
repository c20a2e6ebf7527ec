"""When a REST answer was made: the origin's ``Date`` minus the cache's ``Age``.

Kalshi's public REST goes through CloudFront (``Cache-Control: public, max-age=15``, KALSHI_API.md §1), which
keeps the origin's ``Date`` on a cached answer and adds how long it has held it as ``Age``. Their difference is
the exchange-side time of the state in the body (to the second, rounded down), which a REST answer otherwise
lacks. Callers that want it collect the times of the answers they read::

    with collect_answer_times() as made:
        markets = [m async for m in client.iter_markets(status="open")]
    as_of = min(made) if made else None
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

_COLLECTED: ContextVar[list[datetime] | None] = ContextVar("kalshi_answer_times", default=None)


def answer_time(headers: Mapping[str, str]) -> datetime | None:
    """``Date`` − ``Age`` of one response (aware UTC); None without a readable ``Date``."""
    raw = headers.get("date")
    if not raw:
        return None
    try:
        made = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if made.tzinfo is None:
        made = made.replace(tzinfo=UTC)
    try:
        age = max(0, int(headers.get("age") or 0))
    except ValueError:
        age = 0
    return made.astimezone(UTC) - timedelta(seconds=age)


def note_answer(headers: Mapping[str, str]) -> None:
    """Called by the client for every successful answer; kept only inside :func:`collect_answer_times`."""
    collected = _COLLECTED.get()
    if collected is not None and (made := answer_time(headers)) is not None:
        collected.append(made)


@contextmanager
def collect_answer_times() -> Iterator[list[datetime]]:
    """The times of the answers read by this task inside the block (a context variable: other tasks' reads
    are not mixed in)."""
    collected: list[datetime] = []
    token = _COLLECTED.set(collected)
    try:
        yield collected
    finally:
        _COLLECTED.reset(token)
