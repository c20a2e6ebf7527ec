"""Markets routes against real PostgreSQL, data written through the recorder's Sink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.kalshi.domain import PriceLevel
from kalshi_analytics.recorder.rows import OrderbookRow, SnapshotRow, TradeRow
from tests.fixtures.app import assert_problem, market, ticker, write

D = Decimal
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def snap(t: str, ts: datetime, **kw: object) -> SnapshotRow:
    return SnapshotRow(ticker=t, ts=ts, source=str(kw.pop("source", "poll")), received_at=ts, **kw)  # type: ignore[arg-type]


async def test_market_detail_mid(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    await write(
        engine,
        market(t, result=None),
        snap(
            t,
            T0,
            yes_bid=D("0.40"),
            yes_ask=D("0.44"),
            no_bid=D("0.56"),
            no_ask=D("0.60"),
            last_price=D("0.41"),
            volume=D("100"),
            open_interest=D("50"),
        ),
    )
    r = await client.get(f"/api/v1/markets/{t}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ticker"] == t
    assert body["yes_price"] == "0.4000"
    assert body["no_price"] == "0.5600"
    assert body["yes_ask"] == "0.4400"
    assert body["no_ask"] == "0.6000"
    assert body["implied_probability"] == "0.4200"
    assert body["implied_probability_source"] == "mid"
    assert body["volume"] == "100"
    assert body["open_interest"] == "50"
    assert body["last_updated"].startswith("2026-11-20T12:00:00")
    assert body["result"] is None


async def test_market_detail_carries_the_exchange_rules(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t, bare = ticker(), ticker()
    rules = {"rules_primary": "If CPI rises above 0.4%, Yes.", "rules_secondary": "Source: BLS | release"}
    await write(engine, market(t, raw={"ticker": t, **rules}), market(bare))
    body = (await client.get(f"/api/v1/markets/{t}")).json()
    assert (body["rules_primary"], body["rules_secondary"]) == (rules["rules_primary"], rules["rules_secondary"])
    none = (await client.get(f"/api/v1/markets/{bare}")).json()
    assert (none["rules_primary"], none["rules_secondary"]) == (None, None)


async def test_implied_probability_wide_spread_and_one_sided_use_last(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    wide, one_sided, empty, edge = ticker(), ticker(), ticker(), ticker()
    await write(
        engine,
        market(wide),
        market(one_sided),
        market(empty),
        market(edge),
        snap(wide, T0, yes_bid=D("0.30"), yes_ask=D("0.41"), last_price=D("0.33")),
        snap(one_sided, T0, yes_bid=D("0.30"), last_price=D("0.31")),
        snap(empty, T0),
        snap(edge, T0, yes_bid=D("0.30"), yes_ask=D("0.40"), last_price=D("0.99")),
    )
    got = {}
    for t in (wide, one_sided, empty, edge):
        b = (await client.get(f"/api/v1/markets/{t}")).json()
        got[t] = (b["implied_probability"], b["implied_probability_source"])
    assert got[wide] == ("0.3300", "last")
    assert got[one_sided] == ("0.3100", "last")
    assert got[empty] == (None, None)
    assert got[edge] == ("0.3500", "mid")  # spread exactly 0.10 is still sane


async def test_settled_market_shows_result(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    await write(engine, market(t, status="finalized", result="yes", settlement_value=D("1"), settled_at=T0))
    body = (await client.get(f"/api/v1/markets/{t}")).json()
    assert body["status"] == "finalized"
    assert body["result"] == "yes"
    assert body["settlement_value"] == "1.0000"
    assert body["implied_probability"] is None


async def test_unknown_ticker_is_404_problem(client: httpx.AsyncClient) -> None:
    for path in ("", "/latest", "/history", "/history?interval=1h", "/orderbook", "/trades"):
        r = await client.get(f"/api/v1/markets/NOPE-XYZ{path}")
        body = assert_problem(r, 404)
        assert body["path"] == "/api/v1/markets/NOPE-XYZ" + path.split("?")[0]
        assert body["method"] == "GET"


async def test_latest_snapshot(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    await write(
        engine,
        market(t),
        snap(t, T0, yes_bid=D("0.10"), yes_ask=D("0.12")),
        snap(t, T0 + timedelta(seconds=5), yes_bid=D("0.20"), yes_ask=D("0.22"), source="websocket", sequence=7),
    )
    r = await client.get(f"/api/v1/markets/{t}/latest")
    assert r.status_code == 200
    b = r.json()
    assert b["yes_bid"] == "0.2000"
    assert b["source"] == "websocket"
    assert b["sequence"] == 7
    assert b["implied_probability"] == "0.2100"
    t2 = ticker()
    await write(engine, market(t2))
    body = assert_problem(await client.get(f"/api/v1/markets/{t2}/latest"), 404)
    assert "no snapshot" in str(body["detail"])


async def test_list_filters_search_sort_and_pages(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    series = ticker("KXSER")
    tickers = sorted(ticker(series) for _ in range(7))
    rows = [
        market(
            t,
            series_ticker=series,
            title=f"Rain 100% in city {i}" if i % 2 else f"Snow in city {i}",
            volume=D(10 * i),
            category="Climate",
            status="active" if i < 5 else "closed",
        )
        for i, t in enumerate(tickers)
    ]
    await write(engine, *rows, snap(tickers[0], T0, yes_bid=D("0.5"), yes_ask=D("0.52")))

    r = await client.get("/api/v1/markets", params={"series": series})
    items = r.json()["items"]
    assert [i["ticker"] for i in items] == tickers
    assert items[0]["implied_probability"] == "0.5100"
    assert items[0]["implied_probability_source"] == "mid"

    r = await client.get("/api/v1/markets", params={"series": series, "q": "100%"})
    assert [i["ticker"] for i in r.json()["items"]] == [tickers[1], tickers[3], tickers[5]]
    r = await client.get("/api/v1/markets", params={"series": series, "q": "snow", "status": "closed"})
    assert [i["ticker"] for i in r.json()["items"]] == [tickers[6]]
    r = await client.get("/api/v1/markets", params={"series": series, "category": "Nope"})
    assert r.json()["items"] == []

    # Every sort, paged 2 at a time, returns every market exactly once, in order.
    for sort, order, expected in (
        ("ticker", "asc", tickers),
        ("ticker", "desc", tickers[::-1]),
        ("volume", "desc", tickers[::-1]),
        ("close_time", "asc", tickers),
    ):
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"series": series, "sort": sort, "order": order, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/api/v1/markets", params=params)).json()
            seen += [i["ticker"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, (sort, order)


async def test_list_validation_errors_name_the_field(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/markets", params={"limit": 0}), 422)
    assert body["errors"][0]["field"] == "query.limit"  # type: ignore[index]
    body = assert_problem(await client.get("/api/v1/markets", params={"limit": 1001}), 422)
    body = assert_problem(await client.get("/api/v1/markets", params={"sort": "bogus"}), 422)
    assert body["errors"][0]["field"] == "query.sort"  # type: ignore[index]
    body = assert_problem(await client.get("/api/v1/markets", params={"cursor": "!!garbage"}), 422)
    assert body["errors"][0]["field"] == "query.cursor"  # type: ignore[index]
    other = (await client.get("/api/v1/markets", params={"limit": 1})).json()["next_cursor"]
    if other:
        body = assert_problem(await client.get("/api/v1/markets", params={"cursor": other, "sort": "volume"}), 422)


async def test_raw_history_pages_have_no_duplicates_or_holes(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    rows = [snap(t, T0 + timedelta(seconds=i), yes_bid=D("0.5"), yes_ask=D("0.52")) for i in range(23)]
    # Two sources at the same instant: both rows, in (ts, source) order.
    rows.append(snap(t, T0 + timedelta(seconds=4), source="websocket", yes_bid=D("0.6")))
    await write(engine, market(t), *rows)
    seen: list[tuple[str, str]] = []
    cursor = None
    params = {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=1)).isoformat(), "limit": 5}
    while True:
        page = (
            await client.get(
                f"/api/v1/markets/{t}/history", params={**params, **({"cursor": cursor} if cursor else {})}
            )
        ).json()
        seen += [(i["ts"], i["source"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 24
    assert len(set(seen)) == 24
    assert seen == sorted(seen)
    # end is exclusive, start inclusive
    page = (
        await client.get(
            f"/api/v1/markets/{t}/history",
            params={"start": (T0 + timedelta(seconds=1)).isoformat(), "end": (T0 + timedelta(seconds=3)).isoformat()},
        )
    ).json()
    assert len(page["items"]) == 2
    body = assert_problem(
        await client.get(f"/api/v1/markets/{t}/history", params={"start": T0.isoformat(), "end": T0.isoformat()}), 422
    )
    assert body["errors"][0]["field"] == "query.start"  # type: ignore[index]


async def test_candles_roll_up_by_hand(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    # 12:00..12:09, two snapshots a minute: prob = mid; last price drifts.
    rows = []
    for m in range(10):
        for s, bump in ((10, D(0)), (40, D("0.01"))):
            bid = D("0.40") + D(m) / 100 + bump
            rows.append(
                snap(
                    t,
                    T0 + timedelta(minutes=m, seconds=s),
                    yes_bid=bid,
                    yes_ask=bid + D("0.02"),
                    last_price=bid,
                    volume=D(m * 2 + (s == 40)),
                )
            )
    await write(engine, market(t), *rows)
    base = {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=10)).isoformat()}
    one = (await client.get(f"/api/v1/markets/{t}/history", params={**base, "interval": "1m"})).json()["candles"]
    assert len(one) == 10
    assert one[0]["prob_open"] == "0.4100"
    assert one[0]["prob_close"] == "0.4200"
    assert one[0]["snapshots"] == 2
    five = (await client.get(f"/api/v1/markets/{t}/history", params={**base, "interval": "5m"})).json()["candles"]
    assert [c["start"][:16] for c in five] == ["2026-11-20T12:00", "2026-11-20T12:05"]
    c0, c1 = five
    # minutes 0..4: open = first mid 0.41, high = last mid of minute 4 = 0.40+0.04+0.01+0.01 = 0.46
    assert (c0["prob_open"], c0["prob_high"], c0["prob_low"], c0["prob_close"]) == (
        "0.4100",
        "0.4600",
        "0.4100",
        "0.4600",
    )
    assert (c0["price_open"], c0["price_high"], c0["price_low"], c0["price_close"]) == (
        "0.4000",
        "0.4500",
        "0.4000",
        "0.4500",
    )
    assert c0["volume"] == "9"
    assert c0["snapshots"] == 10
    assert (c1["prob_open"], c1["prob_close"]) == ("0.4600", "0.5100")
    assert c1["yes_bid_close"] == "0.5000"
    assert c1["yes_ask_close"] == "0.5200"
    hour = (await client.get(f"/api/v1/markets/{t}/history", params={**base, "interval": "1h"})).json()["candles"]
    assert len(hour) == 1
    h = hour[0]
    assert (h["prob_open"], h["prob_high"], h["prob_low"], h["prob_close"]) == ("0.4100", "0.5100", "0.4100", "0.5100")
    assert h["snapshots"] == 20
    assert h["volume"] == "19"
    assert h["first_ts"].startswith("2026-11-20T12:00:10")
    assert h["last_ts"].startswith("2026-11-20T12:09:40")
    body = assert_problem(await client.get(f"/api/v1/markets/{t}/history", params={"interval": "2m"}), 422)
    assert body["errors"][0]["field"] == "query.interval"  # type: ignore[index]
    # More than 10,000 candles: a page at a time (test_history_windows.py), here all the data in the first one.
    long = await client.get(f"/api/v1/markets/{t}/history", params={"interval": "1m", "start": "2000-01-01T00:00:00Z"})
    assert (len(long.json()["candles"]), long.json()["next_cursor"]) == (10, None)


async def test_orderbook_latest_depth_and_at(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    lv = PriceLevel

    def book(ts: datetime, top: Decimal) -> OrderbookRow:
        yes = tuple(lv(top - D(i) / 100, D(10 + i)) for i in range(5))[::-1]  # ascending, as Kalshi sends
        no = (lv(D("0.40"), D(3)), lv(D("0.45"), D(4)))
        return OrderbookRow(ticker=t, ts=ts, received_at=ts, source="websocket", sequence=1, yes=yes, no=no)

    await write(engine, market(t), book(T0, D("0.50")), book(T0 + timedelta(minutes=1), D("0.55")))
    b = (await client.get(f"/api/v1/markets/{t}/orderbook", params={"depth": 2})).json()
    assert [x["price"] for x in b["yes"]] == ["0.5500", "0.5400"]
    assert b["best_yes_bid"] == "0.5500"
    assert b["best_yes_ask"] == "0.5500"
    assert [x["price"] for x in b["no"]] == ["0.4500", "0.4000"]
    past = (
        await client.get(f"/api/v1/markets/{t}/orderbook", params={"at": (T0 + timedelta(seconds=30)).isoformat()})
    ).json()
    assert past["yes"][0]["price"] == "0.5000"
    assert len(past["yes"]) == 5
    body = assert_problem(
        await client.get(f"/api/v1/markets/{t}/orderbook", params={"at": "2020-01-01T00:00:00Z"}), 404
    )
    assert "at or before" in str(body["detail"])


async def test_trades_newest_first_paginated(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    trades = [
        TradeRow(
            trade_id=f"{t}-{i:02d}",
            ticker=t,
            ts=T0 + timedelta(seconds=i // 2),
            received_at=T0,
            yes_price=D("0.42"),
            no_price=D("0.58"),
            count=D("1.5"),
            taker_side="yes",
        )
        for i in range(11)
    ]
    await write(engine, market(t), *trades)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"/api/v1/markets/{t}/trades", params=params)).json()
        seen += [x["trade_id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"{t}-{i:02d}" for i in reversed(range(11))]
    page = (await client.get(f"/api/v1/markets/{t}/trades", params={"limit": 1})).json()
    assert page["items"][0]["count"] == "1.5"
    assert page["items"][0]["yes_price"] == "0.4200"


async def test_nul_characters_are_422_not_500(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/markets", params={"q": "a\x00b"}), 422)
    assert_problem(await client.get("/api/v1/markets/A%00B"), 422)
    assert_problem(await client.get("/api/v1/markets/A%00B/trades"), 422)


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("orderbook", {"at": "9999-12-31T23:59:59.999999-05:00"}, "query.at"),
        ("orderbook", {"at": "0001-01-01T00:00:00+14:00"}, "query.at"),
        ("history", {"interval": "1m", "end": "9999-12-31T23:59:59-05:00"}, "query.end"),
        ("history", {"start": "0001-01-01T00:00:00+01:00"}, "query.start"),
        ("trades", {"end": "9999-12-31T23:59:59-12:00"}, "query.end"),
    ],
)
async def test_times_outside_postgresql_range_once_in_utc_are_422_naming_the_parameter(
    client: httpx.AsyncClient, route: str, params: dict[str, str], field: str
) -> None:
    body = assert_problem(await client.get(f"/api/v1/markets/ANY/{route}", params=params), 422)
    assert [e["field"] for e in body["errors"]] == [field]  # type: ignore[attr-defined]


async def test_sql_rendered_rows_match_the_pydantic_rendering(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    """Raw history items are rendered by PostgreSQL, /latest by pydantic: the same snapshot reads the same."""
    t = ticker()
    ts = datetime(2026, 11, 20, 12, 0, 5, 123456, tzinfo=UTC)
    await write(
        engine,
        market(t),
        SnapshotRow(
            ticker=t,
            ts=ts,
            source="websocket",
            received_at=ts + timedelta(microseconds=26544),
            sequence=3,
            yes_bid=D("0.4050"),
            yes_ask=D("0.4125"),
            no_bid=D("0.5875"),
            no_ask=D("0.5950"),
            last_price=D("0.41"),
            yes_bid_size=D("12.50"),
            volume=D("1000"),
            open_interest=D("0"),
            status="active",
        ),
    )
    latest = (await client.get(f"/api/v1/markets/{t}/latest")).json()
    page = (await client.get(f"/api/v1/markets/{t}/history", params={"start": T0.isoformat()})).json()
    assert page["items"] == [latest]
    assert latest["implied_probability"] == "0.4088"  # (0.4050 + 0.4125) / 2 = 0.40875, half-up
    listed = (await client.get("/api/v1/markets", params={"event": f"EV-{t}"})).json()["items"][0]
    detail = (await client.get(f"/api/v1/markets/{t}")).json()
    for key in (
        "ticker",
        "title",
        "status",
        "yes_bid",
        "yes_ask",
        "last_price",
        "implied_probability",
        "implied_probability_source",
        "last_updated",
        "close_time",
    ):
        assert listed[key] == detail[key], key


async def test_time_parameters_take_the_one_time_grammar(client: httpx.AsyncClient, engine: AsyncEngine) -> None:
    t = ticker()
    now = datetime.now(UTC).replace(microsecond=0)
    recent, old = now - timedelta(hours=2), now - timedelta(days=3)
    await write(
        engine,
        market(t),
        snap(t, old, yes_bid=D("0.30"), yes_ask=D("0.32")),
        snap(t, recent, yes_bid=D("0.50"), yes_ask=D("0.52")),
        *(
            TradeRow(
                trade_id=f"{t}-{i}", ticker=t, ts=ts, received_at=ts, yes_price=D("0.5"), no_price=D("0.5"), count=D(1)
            )
            for i, ts in enumerate((old, recent))
        ),
    )
    history = f"/api/v1/markets/{t}/history"
    # Relative to now: the last day holds only the recent snapshot; the last week both.
    page = (await client.get(history, params={"start": "-1d", "end": "now"})).json()
    assert [i["ts"] for i in page["items"]] == [recent.isoformat().replace("+00:00", "Z")]
    assert len((await client.get(history, params={"start": "-1w"})).json()["items"]) == 2
    # Unix seconds, and a date alone (midnight UTC).
    unix = {"start": str(int(old.timestamp())), "end": str(int(recent.timestamp()))}
    assert len((await client.get(history, params=unix)).json()["items"]) == 1
    day = {"start": old.date().isoformat(), "end": (old.date() + timedelta(days=1)).isoformat()}
    assert len((await client.get(history, params=day)).json()["items"]) == 1
    candles = (await client.get(history, params={"interval": "1h", "start": "-1d", "end": "now"})).json()
    assert len(candles["candles"]) == 1
    trades = (await client.get(f"/api/v1/markets/{t}/trades", params={"start": "-1d"})).json()["items"]
    assert [x["trade_id"] for x in trades] == [f"{t}-1"]
    assert (await client.get(f"/api/v1/markets/{t}/orderbook", params={"at": "-1d"})).status_code == 404


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("history", {"start": "yesterday"}, "query.start"),
        ("history", {"end": "-1y"}, "query.end"),
        ("history", {"start": "now", "end": "now"}, "query.start"),
        ("history", {"start": "-99999999999w"}, "query.start"),
        ("history", {"end": "999999999999"}, "query.end"),
        ("orderbook", {"at": "2026-13-01"}, "query.at"),
        ("trades", {"start": "1e9"}, "query.start"),
    ],
)
async def test_unreadable_times_are_422_naming_the_parameter(
    client: httpx.AsyncClient, route: str, params: dict[str, str], field: str
) -> None:
    body = assert_problem(await client.get(f"/api/v1/markets/ANY/{route}", params=params), 422)
    assert [e["field"] for e in body["errors"]] == [field]
    assert str(body["detail"]).startswith(f"invalid request: {field}: ")
