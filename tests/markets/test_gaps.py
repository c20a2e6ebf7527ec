"""``GET /markets/{ticker}/gaps``: the feed gaps that touch one market, against real PostgreSQL, written through
the recorder's sink (opened, then repaired or given up)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import GapOpened, GapRepaired
from tests.fixtures.app import assert_problem, market, ticker, write

# Gaps about a whole subscription (ticker NULL) concern every market, other tests' too: each test reads a window
# of its own, far from the others', and looks only at the gaps it wrote.
BASE = datetime(2031, 1, 1, tzinfo=UTC)


def _window() -> datetime:
    return BASE + timedelta(days=random.randrange(0, 3000), hours=random.randrange(24))


def opened(t: str | None, start: datetime, *, channel: str = "ticker", cause: str = "seq_jump") -> GapOpened:
    return GapOpened(
        key=uuid.uuid4().hex,
        detected_at=start + timedelta(seconds=1),
        channel=channel,
        sid=None,
        market_ticker=t,
        cause=cause,
        seq_expected=None,
        seq_received=None,
        gap_start=start,
    )


def path(t: str) -> str:
    return f"/api/v1/markets/{t}/gaps"


async def test_gaps_of_the_market_and_of_whole_subscriptions_overlapping_the_window(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    t, other = ticker(), ticker()
    w0 = _window()
    mine = opened(t, w0 + timedelta(minutes=10))
    everyone = opened(None, w0 + timedelta(minutes=20), channel="all", cause="disconnect")
    theirs = opened(other, w0 + timedelta(minutes=15))
    before = opened(t, w0 - timedelta(minutes=30))  # closed before the window opens
    straddles = opened(t, w0 - timedelta(minutes=5))  # began before, ended inside
    after = opened(t, w0 + timedelta(hours=2))  # begins at the window's end: not inside [start, end)
    still_open = opened(t, w0 + timedelta(minutes=50))
    await write(
        engine,
        market(t),
        market(other),
        mine,
        everyone,
        theirs,
        before,
        straddles,
        after,
        still_open,
        GapRepaired(mine.key, w0 + timedelta(minutes=12), w0 + timedelta(minutes=13), "rest_backfill"),
        GapRepaired(everyone.key, w0 + timedelta(minutes=21), w0 + timedelta(minutes=22), "get_snapshot"),
        GapRepaired(theirs.key, w0 + timedelta(minutes=16), w0 + timedelta(minutes=17), "get_snapshot"),
        GapRepaired(before.key, w0 - timedelta(minutes=29), w0, "get_snapshot"),
        GapRepaired(
            straddles.key, w0 + timedelta(minutes=1), None, "rest_backfill", unrepairable_reason="history expired"
        ),
    )
    keys = {g.key for g in (mine, everyone, theirs, before, straddles, after, still_open)}
    r = await client.get(path(t), params={"start": w0.isoformat(), "end": (w0 + timedelta(hours=2)).isoformat()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ticker"] == t
    assert body["next_cursor"] is None
    items = [g for g in body["items"] if g["key"] in keys]
    assert [g["key"] for g in items] == [straddles.key, mine.key, everyone.key, still_open.key]
    by_key = {g["key"]: g for g in items}
    assert by_key[mine.key]["ticker"] == t
    assert by_key[mine.key]["gap_end"] == (w0 + timedelta(minutes=12)).isoformat().replace("+00:00", "Z")
    assert by_key[mine.key]["repair_method"] == "rest_backfill"
    assert by_key[mine.key]["repaired_at"] is not None
    assert by_key[everyone.key]["ticker"] is None
    assert by_key[everyone.key]["cause"] == "disconnect"
    assert by_key[straddles.key]["repaired_at"] is None
    assert by_key[straddles.key]["unrepairable_reason"] == "history expired"
    assert by_key[still_open.key]["gap_end"] is None
    assert by_key[still_open.key]["repair_method"] is None

    # The other market sees its own gap and the shared one, not this market's.
    other_items = (
        await client.get(path(other), params={"start": w0.isoformat(), "end": (w0 + timedelta(hours=2)).isoformat()})
    ).json()["items"]
    assert [g["key"] for g in other_items if g["key"] in keys] == [theirs.key, everyone.key]

    # An open gap overlaps every later window.
    later = w0 + timedelta(days=3)
    late = (
        await client.get(path(t), params={"start": later.isoformat(), "end": (later + timedelta(hours=1)).isoformat()})
    ).json()
    assert still_open.key in [g["key"] for g in late["items"]]
    assert mine.key not in [g["key"] for g in late["items"]]


async def test_gap_pages_have_no_duplicates_or_holes(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    w0 = _window()
    gaps = [opened(t, w0 + timedelta(minutes=i // 2)) for i in range(7)]  # ties on gap_start: id breaks them
    await write(engine, market(t), *gaps)
    params = {"start": w0.isoformat(), "end": (w0 + timedelta(hours=1)).isoformat(), "limit": "2"}
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = (await client.get(path(t), params={**params, **({"cursor": cursor} if cursor else {})})).json()
        assert len(page["items"]) <= 2
        seen += [g["key"] for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    mine = [k for k in seen if k in {g.key for g in gaps}]
    assert sorted(mine) == sorted(g.key for g in gaps)
    assert len(mine) == len(set(mine)) == 7
    starts = [g.gap_start for g in gaps]
    assert [starts[[g.key for g in gaps].index(k)] for k in mine] == sorted(starts)


async def test_a_market_without_gaps_is_an_empty_list_and_head_answers_like_get(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    t = ticker()
    await write(engine, market(t))
    w0 = BASE - timedelta(days=400)
    params = {"start": (w0 - timedelta(hours=1)).isoformat(), "end": w0.isoformat()}
    r = await client.get(path(t), params=params)
    assert r.status_code == 200
    assert all(g["ticker"] is None for g in r.json()["items"])  # only shared gaps other tests left open
    head = await client.head(path(t), params=params)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == r.headers["content-type"]


async def test_unknown_market_is_404_even_with_whole_subscription_gaps(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    w0 = _window()
    await write(engine, opened(None, w0, channel="all", cause="disconnect"))
    body = assert_problem(
        await client.get(
            path("KXNOPE-" + uuid.uuid4().hex[:8]),
            params={"start": w0.isoformat(), "end": (w0 + timedelta(hours=1)).isoformat()},
        ),
        404,
    )
    assert "unknown market" in str(body["detail"])
    assert (await client.head(path("KXNOPE-" + uuid.uuid4().hex[:8]))).status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "query.start"),
        ({"end": "-1y"}, "query.end"),
        ({"start": "now", "end": "now"}, "query.start"),
        ({"start": "2026-11-21T00:00:00Z", "end": "2026-11-20T00:00:00Z"}, "query.start"),
        ({"end": "9999-12-31T23:59:59-05:00"}, "query.end"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
        ({"cursor": "WyJ0cmFkZXMiLCJ4Il0"}, "query.cursor"),  # a cursor of another listing
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
    ],
)
async def test_bad_input_is_422_naming_the_parameter(
    client: httpx.AsyncClient, engine: AsyncEngine, params: dict[str, str], field: str
) -> None:
    t = ticker()
    await write(engine, market(t))
    body = assert_problem(await client.get(path(t), params=params), 422)
    assert [e["field"] for e in body["errors"]] == [field]
