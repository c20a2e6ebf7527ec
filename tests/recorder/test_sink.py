"""The sink against real PostgreSQL: every row type, idempotency, candles, NOTIFY, bad rows, market upserts.

The sink commits, so these tests use the session database directly and keep apart by unique tickers.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.db.engine import libpq_url
from kalshi_analytics.kalshi.domain import Market, PriceLevel, PriceRange
from kalshi_analytics.kalshi.status import MarketResult, MarketStatus
from kalshi_analytics.recorder.candles import implied_probability
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.recorder.rejected import RejectedLog
from kalshi_analytics.recorder.rows import (
    GapOpened,
    GapRepaired,
    MarketRow,
    OrderbookRow,
    SnapshotRow,
    TradeRow,
    market_row_from_domain,
)
from kalshi_analytics.recorder.sink import Sink, SinkClosedError, is_transient
from kalshi_analytics.recorder.tables import series_since

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
D = Decimal


def _ticker(prefix: str = "KXSINK") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


def _snap(ticker: str, ts: datetime, **kw: object) -> SnapshotRow:
    return SnapshotRow(ticker=ticker, ts=ts, source=str(kw.pop("source", "poll")), received_at=ts, **kw)  # type: ignore[arg-type]


def _trade(ticker: str, i: int, **kw: object) -> TradeRow:
    base: dict[str, object] = {
        "trade_id": f"{ticker}-t{i}",
        "ticker": ticker,
        "ts": T0 + timedelta(seconds=i),
        "received_at": T0 + timedelta(seconds=i, milliseconds=5),
        "yes_price": D("0.4200"),
        "no_price": D("0.5800"),
        "count": D("3.5"),
        "taker_side": "yes",
        "is_block_trade": False,
        "source": "websocket",
    }
    base.update(kw)
    return TradeRow(**base)  # type: ignore[arg-type]


def _market(ticker: str, **kw: object) -> MarketRow:
    base: dict[str, object] = {"ticker": ticker, "event_ticker": "KXEV-1", "status": "active", "title": "Will it?"}
    base.update(kw)
    return MarketRow(**base)  # type: ignore[arg-type]


def _gap(key: str, ticker: str | None) -> GapOpened:
    return GapOpened(
        key=key,
        detected_at=T0,
        channel="orderbook_delta",
        sid=7,
        market_ticker=ticker,
        cause="seq_jump",
        seq_expected=10,
        seq_received=14,
        gap_start=T0 - timedelta(seconds=2),
        details={"shard": 1},
    )


async def _scalar(engine: AsyncEngine, sql: str, **params: object) -> object:
    async with engine.connect() as c:
        return (await c.execute(text(sql), params)).scalar_one()


def _sink(engine: AsyncEngine, **kw: object) -> Sink:
    opts: dict[str, object] = {"batch_max_rows": 1000, "batch_max_seconds": 0.02, "queue_max": 10_000}
    opts.update(kw)
    return Sink(engine, **opts)  # type: ignore[arg-type]


async def test_writes_every_row_type_in_one_batch_and_counts_them(engine: AsyncEngine) -> None:
    t = _ticker()
    key = uuid.uuid4().hex
    book = OrderbookRow(
        ticker=t,
        ts=T0,
        received_at=T0,
        source="websocket",
        sequence=42,
        yes=(PriceLevel(D("0.40"), D("10")), PriceLevel(D("0.41"), D("2.5"))),
        no=(PriceLevel(D("0.55"), D("7")),),
    )
    async with _sink(engine, batch_max_seconds=0.5) as sink:
        for item in (
            _market(t),
            _snap(t, T0, yes_bid=D("0.41"), yes_ask=D("0.45"), last_price=D("0.42"), source="websocket"),
            _snap(t, T0, yes_bid=D("0.41"), yes_ask=D("0.45"), last_price=D("0.42"), source="poll"),
            _trade(t, 1),
            book,
            _gap(key, t),
            GapRepaired(key=key, gap_end=T0, repaired_at=T0 + timedelta(seconds=1), repair_method="get_snapshot"),
        ):
            await sink.put(item)
        await sink.flush()
        stats = sink.stats
    assert stats.new == {
        "markets": 1,
        "market_snapshots": 2,
        "trades": 1,
        "orderbook_snapshots": 1,
        "feed_gaps": 1,
    }
    assert stats.done == stats.put == 7
    assert stats.batches == 1, "all seven arrived within batch_max_seconds: one unit of work"
    assert stats.rejected == {}
    assert sink.metrics.value("kalshi_recorder_rows_written_total", {"table": "trades"}) == 1
    async with engine.connect() as c:
        b = (await c.execute(text("SELECT * FROM orderbook_snapshots WHERE ticker = :t"), {"t": t})).one()
        assert b.yes_prices == [D("0.4000"), D("0.4100")]
        assert b.yes_sizes == [D("10"), D("2.5")]
        assert b.no_prices == [D("0.5500")]
        assert b.sequence == 42
        tr = (await c.execute(text("SELECT * FROM trades WHERE ticker = :t"), {"t": t})).one()
        assert (tr.yes_price, tr.count, tr.taker_side) == (D("0.4200"), D("3.5"), "yes")
        g = (await c.execute(text("SELECT * FROM feed_gaps WHERE key = :k"), {"k": key})).one()
        assert (g.market_ticker, g.repair_method, g.gap_end) == (t, "get_snapshot", T0)
        assert g.details == {"shard": 1}
        candle = (await c.execute(text("SELECT * FROM market_candles_1m WHERE ticker = :t"), {"t": t})).one()
        assert candle.prob_close == D("0.4300")  # mid of 0.41/0.45
    # The live feed's lag: the websocket snapshot and trade count, the poll snapshot does not.
    assert sink.metrics.value("kalshi_recorder_commit_lag_seconds_count", {"kind": "snapshot"}) == 1
    assert sink.metrics.value("kalshi_recorder_commit_lag_seconds_count", {"kind": "trade"}) == 1


async def test_same_rows_twice_are_stored_once_and_candles_count_them_once(engine: AsyncEngine) -> None:
    t = _ticker()
    snaps = [_snap(t, T0 + timedelta(seconds=5 * i), last_price=D("0.5") + D(i) / 100) for i in range(6)]
    trades = [_trade(t, i) for i in range(3)]
    async with _sink(engine) as sink:
        for r in [*snaps, *trades]:
            await sink.put(r)
        await sink.flush()
        for r in [*snaps, snaps[0], *trades]:  # again, and a repeat inside one batch
            await sink.put(r)
        await sink.flush()
        stats = sink.stats
    assert stats.new["market_snapshots"] == 6
    assert stats.duplicates["market_snapshots"] == 7
    assert (stats.new["trades"], stats.duplicates["trades"]) == (3, 3)
    assert await _scalar(engine, "SELECT count(*) FROM market_snapshots WHERE ticker = :t", t=t) == 6
    assert await _scalar(engine, "SELECT count(*) FROM trades WHERE ticker = :t", t=t) == 3
    assert await _scalar(engine, "SELECT snapshots FROM market_candles_1m WHERE ticker = :t", t=t) == 6


async def test_candles_merge_out_of_order_batches_by_exchange_time(engine: AsyncEngine) -> None:
    t = _ticker()
    m0, m1 = T0, T0 + timedelta(minutes=1)

    def s(ts: datetime, bid: str | None, ask: str | None, last: str | None, vol: int) -> SnapshotRow:
        return _snap(
            t,
            ts,
            yes_bid=D(bid) if bid else None,
            yes_ask=D(ask) if ask else None,
            last_price=D(last) if last else None,
            volume=D(vol),
            open_interest=D(vol * 2),
        )

    rows = [
        # minute 0
        s(m0 + timedelta(seconds=1), "0.40", "0.44", "0.41", 100),  # prob 0.42 (open)
        s(m0 + timedelta(seconds=20), "0.30", "0.50", "0.47", 110),  # spread 0.20 > 0.10 → last 0.47 (high)
        s(m0 + timedelta(seconds=35), "0.35", "0.36", "0.36", 120),  # prob 0.355 (low)
        s(m0 + timedelta(seconds=59), "0.4001", "0.4004", "0.39", 130),  # mid 0.40025 → 0.4003 (close)
        # minute 1
        s(m1 + timedelta(seconds=3), None, None, "0.52", 140),  # no quotes → last 0.52 (open)
        s(m1 + timedelta(seconds=30), "0.60", "0.62", None, 150),  # prob 0.61 (high); no last price
        s(m1 + timedelta(seconds=50), "0.50", "0.58", "0.55", 160),  # prob 0.54 (close)
    ]
    random.Random(7).shuffle(rows)
    # Two separate batches, the later-in-time half first.
    late_first = sorted(rows, key=lambda r: r.ts)[3:]
    early_last = sorted(rows, key=lambda r: r.ts)[:3]
    random.Random(8).shuffle(late_first)
    async with _sink(engine) as sink:
        for r in late_first:
            await sink.put(r)
        await sink.flush()
        for r in early_last:
            await sink.put(r)
        await sink.flush()
        assert sink.stats.batches == 2
    async with engine.connect() as c:
        got = (
            await c.execute(text("SELECT * FROM market_candles_1m WHERE ticker = :t ORDER BY minute"), {"t": t})
        ).all()
    assert len(got) == 2
    a, b = got
    assert (a.minute, b.minute) == (m0, m1)
    assert (a.first_ts, a.last_ts) == (m0 + timedelta(seconds=1), m0 + timedelta(seconds=59))
    assert (a.prob_open, a.prob_high, a.prob_low, a.prob_close) == (D("0.42"), D("0.47"), D("0.355"), D("0.4003"))
    assert (a.price_open, a.price_high, a.price_low, a.price_close) == (D("0.41"), D("0.47"), D("0.36"), D("0.39"))
    assert (a.yes_bid_close, a.yes_ask_close, a.volume, a.open_interest) == (D("0.4001"), D("0.4004"), 130, 260)
    assert a.snapshots == 4
    assert (b.prob_open, b.prob_high, b.prob_low, b.prob_close) == (D("0.52"), D("0.61"), D("0.52"), D("0.54"))
    assert (b.price_open, b.price_high, b.price_low, b.price_close) == (D("0.52"), D("0.55"), D("0.52"), D("0.55"))
    assert (b.volume, b.snapshots) == (160, 3)


def test_implied_probability_rule() -> None:
    assert implied_probability(D("0.40"), D("0.50"), D("0.1")) == D("0.45")  # spread exactly 0.10: mid
    assert implied_probability(D("0.40"), D("0.5001"), D("0.1")) == D("0.1")  # wider: last price
    assert implied_probability(D("0.40"), D("0.5001"), D("0.1"), max_spread=D("0.2")) == D("0.4501")  # half up
    assert implied_probability(None, D("0.5"), None) is None
    assert implied_probability(D("0.6"), D("0.5"), D("0.55")) == D("0.55")  # crossed book: last price


async def test_notify_fires_on_commit_with_the_touched_tickers(engine: AsyncEngine, database_url: str) -> None:
    t1, t2 = _ticker(), _ticker()
    listener = await asyncpg.connect(libpq_url(database_url))
    got: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("market_updates", lambda *args: got.put_nowait(args[3]))
    try:
        async with _sink(engine) as sink:
            await sink.put(_snap(t1, T0, last_price=D("0.5")))
            await sink.put(_trade(t2, 1))
            await sink.flush()
            payloads = []
            while not payloads or not {t1, t2} <= {x for p in payloads for x in json.loads(p)["tickers"]}:
                payloads.append(await asyncio.wait_for(got.get(), 5))
            assert {json.loads(p)["since"] for p in payloads} == {T0.isoformat()}  # the earliest row's minute
            # Duplicates touch nothing: no notification.
            await sink.put(_snap(t1, T0, last_price=D("0.5")))
            await sink.flush()
            assert sink.stats.notifications == 1
    finally:
        await listener.close()


async def test_each_new_row_is_one_journal_event_in_batch_order(engine: AsyncEngine, database_url: str) -> None:
    t = _ticker()
    gap = uuid.uuid4().hex
    listener = await asyncpg.connect(libpq_url(database_url))
    got: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("market_updates", lambda *args: got.put_nowait(args[3]))
    try:
        async with _sink(engine) as sink:
            for item in (
                MarketRow(t, event_ticker="EV", status="active"),
                _snap(t, T0, last_price=D("0.5")),
                _trade(t, 1),
                _snap(t, T0, last_price=D("0.5")),  # repeated in the batch: one row, one event
                GapOpened(gap, T0, "ticker", 1, t, "seq_jump", 2, 5, T0),
                MarketRow(t, status="closed"),
                _snap(t, T0 + timedelta(seconds=1), source="websocket", last_price=D("0.51")),
            ):
                await sink.put(item)
            await sink.flush()
            first = sink.stats.events
            # Already stored, or no change: no event (and a repair is one).
            await sink.put(_snap(t, T0, last_price=D("0.5")))
            await sink.put(_trade(t, 1))
            await sink.put(MarketRow(t, status="closed"))
            await sink.put(GapRepaired(gap, T0 + timedelta(seconds=2), T0 + timedelta(seconds=3), "get_snapshot"))
            await sink.flush()
            assert (first, sink.stats.events) == (5, 6)
        async with engine.connect() as c:
            rows = (
                await c.execute(
                    text("SELECT id, kind, payload FROM stream_events WHERE ticker = :t ORDER BY id"), {"t": t}
                )
            ).all()
        assert [r.kind for r in rows] == [
            "snapshot",
            "trade",
            "gap_opened",
            "market_status",
            "snapshot",
            "gap_repaired",
        ]
        # Two market rows in one batch are one upsert: one status event (stored → closed), where the last is.
        assert {"status": "closed", "previous_status": None}.items() <= json.loads(rows[3].payload).items()
        # The commit's notice says how far the journal goes.
        notice = json.loads(await asyncio.wait_for(got.get(), 5))
        assert notice["last_event_id"] >= rows[4].id
    finally:
        await listener.close()


def test_series_since_is_the_minute_of_the_earliest_time_series_row() -> None:
    a = _snap("A", T0 + timedelta(seconds=95))
    b = _snap("B", T0 + timedelta(seconds=30, microseconds=5))
    assert series_since([a, b], []) == (T0 + timedelta(seconds=30)).replace(second=0, microsecond=0)
    assert series_since([], []) is None


async def test_market_upsert_keeps_result_and_created_at_and_bumps_updated_at(engine: AsyncEngine) -> None:
    t = _ticker()
    settled = T0 + timedelta(hours=3)
    async with _sink(engine) as sink:
        await sink.put(_market(t, volume=D(5)))
        await sink.flush()
        async with engine.connect() as c:
            first = (await c.execute(text("SELECT * FROM markets WHERE ticker = :t"), {"t": t})).one()
        # Settlement arrives as a partial row (lifecycle event): only ticker, status and the settlement.
        await sink.put(
            MarketRow(ticker=t, status="finalized", result="yes", settlement_value=D("1"), settled_at=settled)
        )
        await sink.flush()
        # A later poll with stale metadata (no result) must not erase it.
        await sink.put(_market(t, status="finalized", title="Will it, really?", volume=D(9)))
        await sink.flush()
        # A partial row for a market never seen is skipped and counted, not an error.
        await sink.put(MarketRow(ticker=_ticker(), result="no"))
        await sink.flush()
        assert sink.stats.markets_unknown == 1
        assert sink.stats.rejected == {}
    async with engine.connect() as c:
        m = (await c.execute(text("SELECT * FROM markets WHERE ticker = :t"), {"t": t})).one()
    assert (m.result, m.settlement_value, m.settled_at) == ("yes", D("1.0000"), settled)
    assert (m.status, m.title, m.volume, m.event_ticker) == ("finalized", "Will it, really?", D(9), "KXEV-1")
    assert m.created_at == first.created_at
    assert m.updated_at > first.updated_at


async def test_partial_and_full_rows_of_one_ticker_in_one_batch_apply_in_order(engine: AsyncEngine) -> None:
    t = _ticker()
    async with _sink(engine, batch_max_seconds=0.5) as sink:
        await sink.put(MarketRow(ticker=t, result="no"))  # before the market is known …
        await sink.put(_market(t, status="determined"))  # … but the same batch brings it
        await sink.put(MarketRow(ticker=t, status="finalized"))
        await sink.flush()
        assert sink.stats.batches == 1
    async with engine.connect() as c:
        m = (await c.execute(text("SELECT status, result FROM markets WHERE ticker = :t"), {"t": t})).one()
    assert tuple(m) == ("finalized", "no")


def test_market_row_from_domain() -> None:
    m = Market(
        ticker="KXA-1",
        event_ticker="KXA",
        title="A?",
        category="ignored",
        status=MarketStatus.FINALIZED,
        result=MarketResult.YES,
        settlement_value=D("1"),
        settlement_ts=T0,
        price_ranges=(PriceRange(start=D("0"), end=D("1"), step=D("0.01")),),
        volume=D("12.5"),
        raw={"ticker": "KXA-1"},
    )
    row = market_row_from_domain(m, "Economics", series_ticker="KXA")
    assert (row.category, row.series_ticker, row.status, row.result) == ("Economics", "KXA", "finalized", "yes")
    assert (row.settlement_value, row.settled_at, row.volume) == (D("1"), T0, D("12.5"))
    assert row.price_ranges == [{"start": "0", "end": "1", "step": "0.01"}]
    assert row.raw == {"ticker": "KXA-1"}
    undetermined = market_row_from_domain(Market(ticker="KXB", result=MarketResult.NONE, status="active"), None)
    assert (undetermined.result, undetermined.category) == (None, None)


async def test_bad_rows_are_rejected_counted_and_kept_while_the_rest_of_the_batch_is_stored(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    t = _ticker()
    good = [_snap(t, T0 + timedelta(seconds=i), last_price=D("0.5")) for i in range(20)]
    too_big = _snap(t, T0 + timedelta(seconds=100), last_price=D("12345678.5"))  # beyond NUMERIC(10,4)
    null_price = _trade(t, 1, yes_price=None)
    ok_trade = _trade(t, 2)
    bad_cause = _gap(uuid.uuid4().hex, t)._replace(cause="cosmic_rays")  # the check constraint refuses it
    items = [*good[:10], too_big, null_price, ok_trade, bad_cause, *good[10:]]
    metrics = RecorderMetrics()
    kept = RejectedLog(tmp_path / "rejected.jsonl", metrics=metrics)
    async with _sink(engine, batch_max_seconds=0.5, metrics=metrics, on_rejected=kept.row_refused) as sink:
        for it in items:
            await sink.put(it)  # type: ignore[arg-type]
        await sink.flush()
        stats = sink.stats
    assert stats.rejected == {"market_snapshots": 1, "trades": 1, "feed_gaps": 1}
    assert stats.done == len(items)
    assert sink.metrics.value("kalshi_recorder_rows_rejected_total", {"table": "trades"}) == 1
    assert metrics.value("kalshi_recorder_rejected_total", {"reason": "database_refused"}) == 3
    entries = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert {e["reason"] for e in entries} == {"database_refused"}
    by_table = {e["table"]: e for e in entries}
    assert by_table.keys() == {"market_snapshots", "trades", "feed_gaps"}
    assert by_table["market_snapshots"]["row"]["last_price"] == "12345678.5"  # exact, as it came
    assert by_table["feed_gaps"]["row"]["cause"] == "cosmic_rays"
    assert "numeric field overflow" in by_table["market_snapshots"]["detail"]
    assert await _scalar(engine, "SELECT count(*) FROM market_snapshots WHERE ticker = :t", t=t) == 20
    assert await _scalar(engine, "SELECT count(*) FROM trades WHERE ticker = :t", t=t) == 1
    assert await _scalar(engine, "SELECT snapshots FROM market_candles_1m WHERE ticker = :t", t=t) == 20


async def test_put_nowait_refuses_when_full_and_counts_backpressure(engine: AsyncEngine) -> None:
    sink = _sink(engine, queue_max=2)
    with pytest.raises(SinkClosedError):
        sink.put_nowait(_snap(_ticker(), T0))
    sink.start()  # the drain task cannot run until we yield
    try:
        t = _ticker()
        assert sink.put_nowait(_snap(t, T0))
        assert sink.put_nowait(_snap(t, T0 + timedelta(seconds=1)))
        assert not sink.put_nowait(_snap(t, T0 + timedelta(seconds=2)))
        assert sink.stats.backpressure_waits == 1
        await sink.flush()
        assert sink.stats.new["market_snapshots"] == 2
    finally:
        await sink.close()


def test_transient_errors_are_told_apart_from_bad_data() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    assert is_transient(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    # What a server shutting down mid-query leaves the connection in (seen in the outage test).
    assert is_transient(
        asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
    )
    assert not is_transient(asyncpg.exceptions.NumericValueOutOfRangeError("numeric field overflow"))
    assert not is_transient(asyncpg.exceptions.NotNullViolationError("null value"))
    assert not is_transient(ValueError("naive datetime"))


async def test_an_unrepairable_gap_is_closed_with_its_reason_and_never_looks_repaired(engine: AsyncEngine) -> None:
    key = uuid.uuid4().hex
    async with _sink(engine) as sink:
        await sink.put(_gap(key, _ticker()))
        reason = "the exchange answers 404 for GET /markets/X"
        await sink.put(
            GapRepaired(
                key=key,
                gap_end=T0,
                repaired_at=None,
                repair_method="unrepairable",
                details={"tried": 1},
                unrepairable_reason=reason,
            )
        )
        await sink.flush()
    async with engine.connect() as c:
        g = (await c.execute(text("SELECT * FROM feed_gaps WHERE key = :k"), {"k": key})).one()
    assert g.repaired_at is None
    assert g.unrepairable_reason == reason
    assert g.gap_end == T0
    assert g.details == {"shard": 1, "tried": 1}


async def test_each_close_time_a_market_is_given_is_kept_with_when_it_was_learned(engine: AsyncEngine) -> None:
    """``markets.close_time`` holds the latest close; the history keeps every one, from when it was written, so a
    backtest can show a strategy the close as known at each snapshot (an early close is news when announced)."""
    t = _ticker()
    scheduled, early = T0 + timedelta(hours=6), T0 + timedelta(hours=2)
    async with _sink(engine) as sink:
        await sink.put(_market(t, close_time=scheduled))
        await sink.flush()
        await sink.put(_market(t, close_time=scheduled, volume=D(3)))  # a poll repeating it: not a change
        await sink.put(MarketRow(ticker=t, status="active"))  # a row that does not know the close: not a change
        await sink.flush()
        await sink.put(MarketRow(ticker=t, close_time=early))  # close_date_updated
        await sink.flush()
    async with engine.connect() as c:
        rows = (
            await c.execute(
                text("SELECT known_at, close_time FROM market_close_times WHERE ticker = :t ORDER BY known_at"),
                {"t": t},
            )
        ).all()
        current = (await c.execute(text("SELECT close_time FROM markets WHERE ticker = :t"), {"t": t})).scalar_one()
    assert [r.close_time for r in rows] == [scheduled, early]
    assert rows[0].known_at < rows[1].known_at <= datetime.now(UTC)
    assert current == early
