"""Query parameters the features share: text PostgreSQL can store, a page's size and cursor, and times.

A time parameter takes the one grammar of :mod:`kalshi_analytics.times` (ISO 8601, Unix seconds, ``now``,
``-1d``). Its text is read by :func:`query_time` rather than by pydantic: every time of one request is read
against one clock (``start=-1h&end=now`` is exactly an hour), and a relative one marks the request's answer as
moving with the clock, which the response cache reads (:func:`kalshi_analytics.web.cache.cached`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request

from kalshi_analytics.times import GRAMMAR, TimeParseError, is_relative, parse_time

# PostgreSQL text cannot hold NUL: refuse it at the edge (422) instead of failing in the driver (500).
NO_NUL = r"^[^\x00]*$"

Limit = Annotated[int, Query(ge=1, le=1000, description="page size (at most 1000)")]
Cursor = Annotated[str | None, Query(max_length=2000, pattern=NO_NUL, description="`next_cursor` of the previous page")]

TIME_EXAMPLES = ["2026-11-20T12:00:00Z", "2026-11-20", "1795176000", "now", "-1d"]


def time_query(description: str) -> Any:
    """The ``Query`` of a time parameter (its value is text: read it with :func:`query_time`)."""
    return Query(max_length=64, pattern=NO_NUL, description=f"{description}; {GRAMMAR}", examples=TIME_EXAMPLES)


def query_time(request: Request, name: str, value: str | None) -> datetime | None:
    """The query parameter ``name`` as a UTC datetime (None when absent); 422 naming it when unreadable."""
    if value is None:
        return None
    state = request.state
    if getattr(state, "now", None) is None:
        state.now = datetime.now(UTC)
    if is_relative(value):
        state.clock_relative = True
    try:
        return parse_time(value, now=state.now)
    except TimeParseError as exc:
        raise TimeParseError(str(exc), field=f"query.{name}") from None
