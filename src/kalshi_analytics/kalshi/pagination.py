"""Cursor pagination as async iterators (KALSHI_API.md §3).

Pass the cursor back with the same filters; stop when the cursor is empty, null or absent; a cursor we have
already seen means the listing would loop forever, so we raise :class:`KalshiPaginationError` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from kalshi_analytics.kalshi.domain import Page
from kalshi_analytics.kalshi.errors import KalshiPaginationError

T = TypeVar("T")


async def paginate(
    fetch_page: Callable[[str | None], Awaitable[Page[T]]],
    *,
    max_pages: int | None = None,
) -> AsyncIterator[T]:
    """Yield every item of every page; ``fetch_page(cursor)`` gets ``None`` for the first page."""
    seen: set[str] = set()
    cursor: str | None = None
    pages = 0
    while True:
        page = await fetch_page(cursor)
        pages += 1
        for item in page.items:
            yield item
        nxt = page.cursor
        if not nxt:
            return
        if nxt in seen:
            raise KalshiPaginationError(f"cursor repeated after {pages} pages (listing would loop)", nxt)
        seen.add(nxt)
        if max_pages is not None and pages >= max_pages:
            return
        cursor = nxt
