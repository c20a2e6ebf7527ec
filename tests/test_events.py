"""The event journal: ids in commit order and without holes, reads after a position, the resume window, pruning."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kalshi_analytics import events
from kalshi_analytics.db.engine import libpq_url
from kalshi_analytics.events import EventKind, NewEvent
from tests.conftest import create_migrated_database, drop_database


@pytest.fixture
async def pg(server_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Two connections to a database of this test's own (it prunes the journal)."""
    url = await create_migrated_database(server_url)
    a = await asyncpg.connect(libpq_url(url))
    b = await asyncpg.connect(libpq_url(url))
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        await drop_database(server_url, url)


def ev(ticker: str | None, n: int = 0, kind: str = EventKind.SNAPSHOT) -> NewEvent:
    return NewEvent(kind, ticker, f'{{"n":{n}}}')


async def test_ids_follow_commit_order_and_a_rollback_leaves_no_hole(
    pg: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    a, b = pg
    ta = a.transaction()
    await ta.start()
    assert await events.append(a, [ev("A", 1), ev("A", 2)]) == 2
    # A second writer waits for the first one's commit before it gets ids.
    tb = b.transaction()
    await tb.start()
    second = asyncio.create_task(events.append(b, [ev("B", 3)]))
    await asyncio.sleep(0.3)
    assert not second.done()
    await ta.rollback()  # the first gives its ids back
    assert await second == 1
    await tb.commit()
    async with a.transaction():
        assert await events.append(a, [ev("A", 4)]) == 2
    head, got = await events.read_after(a, 0, ["A", "B"], 100)
    assert head == 2
    assert [(e.id, e.ticker, e.payload) for e in got] == [(1, "B", '{"n":3}'), (2, "A", '{"n":4}')]


async def test_append_refuses_to_run_outside_a_transaction(pg: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    a, _ = pg
    with pytest.raises(RuntimeError, match="inside the transaction"):
        await events.append(a, [ev("A")])
    assert await events.append(a, []) is None


async def test_reads_select_tickers_and_events_of_no_market_page_by_page(
    pg: tuple[asyncpg.Connection, asyncpg.Connection],
) -> None:
    a, _ = pg
    async with a.transaction():
        await events.append(
            a, [ev("A", 1), ev("B", 2), ev(None, 3, EventKind.BACKTEST_FINISHED), ev("A", 4), ev("C", 5)]
        )
    head, got = await events.read_after(a, 0, ["A"], 2)
    assert (head, [e.id for e in got]) == (5, [1, 3])
    head, got = await events.read_after(a, 3, ["A"], 2)
    assert (head, [e.id for e in got]) == (5, [4])
    assert await events.read_after(a, 5, ["A"], 2) == (5, [])


async def test_the_resume_window(pg: tuple[asyncpg.Connection, asyncpg.Connection]) -> None:
    a, _ = pg
    assert await events.resume_refusal(a, 0, 60) is None  # nothing yet: nothing missed
    async with a.transaction():
        await events.append(a, [ev("A", 1), ev("A", 2)])
    assert await events.resume_refusal(a, 0, 60) is None
    assert await events.resume_refusal(a, 2, 60) is None
    assert "never handed out" in (await events.resume_refusal(a, 3, 60) or "")
    await asyncio.sleep(0.3)
    assert "older than the resume window" in (await events.resume_refusal(a, 0, 0.2) or "")
    assert await events.prune(a, 0.2) == 2
    assert "no longer kept" in (await events.resume_refusal(a, 0, 60) or "")
    assert await events.resume_refusal(a, 2, 60) is None  # the head: nothing after it to miss
    async with a.transaction():
        assert await events.append(a, [ev("A", 3)]) == 3  # pruning never reuses ids
    assert await events.prune(a, 60) == 0
