"""Cursor pagination logic with an injected page-fetch function."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kalshi_analytics.kalshi import KalshiPaginationError, Page, paginate

Fetch = Callable[[str | None], Awaitable[Page[int]]]


def pages(*spec: tuple[list[int], str | None]) -> tuple[list[str | None], Fetch]:
    """A page-fetch function serving ``spec`` in order, recording the cursors it was asked for."""
    calls: list[str | None] = []

    async def fetch(cursor: str | None) -> Page[int]:
        calls.append(cursor)
        items, nxt = spec[len(calls) - 1]
        return Page(tuple(items), nxt)

    return calls, fetch


async def collect(it: AsyncIterator[int], into: list[int]) -> None:
    async for x in it:
        into.append(x)


@pytest.mark.parametrize("last_cursor", ["", None])
async def test_follows_cursors_until_empty_or_null(last_cursor: str | None) -> None:
    calls, fetch = pages(([1, 2], "c1"), ([3], "c2"), ([4, 5], last_cursor))
    assert [x async for x in paginate(fetch)] == [1, 2, 3, 4, 5]
    assert calls == [None, "c1", "c2"]


async def test_repeated_cursor_raises_after_yielding_what_it_got() -> None:
    calls, fetch = pages(([1], "c1"), ([2], "c2"), ([3], "c1"), ([4], ""))
    got: list[int] = []
    with pytest.raises(KalshiPaginationError, match="cursor repeated") as info:
        await collect(paginate(fetch), got)
    assert got == [1, 2, 3]
    assert calls == [None, "c1", "c2"]
    assert info.value.raw == "c1"


async def test_same_cursor_twice_in_a_row_is_a_loop() -> None:
    _, fetch = pages(([1], "same"), ([2], "same"))
    with pytest.raises(KalshiPaginationError):
        await collect(paginate(fetch), [])


async def test_empty_page_with_cursor_continues_and_max_pages_stops() -> None:
    calls, fetch = pages(([], "c1"), ([7], "c2"), ([8], "c3"))
    assert [x async for x in paginate(fetch, max_pages=2)] == [7]
    assert calls == [None, "c1"]
