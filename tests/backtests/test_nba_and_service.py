"""Against PostgreSQL: the NBA candle import, buy-and-hold per game to the cent, persistence and the queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests import (
    BacktestRequest,
    MarketFilter,
    enqueue_backtest,
    execute_queued,
    get_executions,
    get_result,
    load_dataset,
    run_backtest,
    validate_request,
)
from kalshi_analytics.backtests.candles_import import import_candle_files, parse_candles
from kalshi_analytics.errors import InvalidInputError, NoDataError, NotFoundError
from kalshi_analytics.recorder.rows import MarketRow, SnapshotRow
from kalshi_analytics.recorder.sink import Sink
from kalshi_analytics.strategies import UnknownStrategyError
from tests.backtests.conftest import WIDE, expected_game


@pytest.fixture(scope="module")
async def nba(bt_engine: AsyncEngine, nba_files: list[Path]) -> list[str]:
    """The shared NBA games imported (tests asking for it skip without the shared data, or fail in CI)."""
    done = await import_candle_files(bt_engine, nba_files)
    return [d.ticker for d in done]


async def test_import_writes_markets_with_inferred_results_and_one_snapshot_per_traded_minute(
    bt_engine: AsyncEngine, nba: list[str], nba_files: list[Path]
) -> None:
    assert len(nba) == 6
    async with bt_engine.connect() as c:
        rows = (
            await c.execute(
                text(
                    "SELECT m.ticker, m.result, m.series_ticker, m.category, "
                    "(SELECT count(*) FROM market_snapshots s WHERE s.ticker = m.ticker AND s.source = 'backfill') n "
                    "FROM markets m WHERE m.series_ticker = 'KXNBAGAME' ORDER BY m.ticker"
                )
            )
        ).all()
    results = {r.ticker: (r.result, r.n) for r in rows}
    # PROVENANCE.md: outcome for the ticker side, and rows with trades
    assert results["KXNBAGAME-25MAY21INDNYK-NYK"] == ("no", 1151)
    assert results["KXNBAGAME-25JUN19OKCIND-IND"] == ("yes", 1232)
    assert results["KXNBAGAME-25DEC25CLENYK-NYK"] == ("yes", 1771)
    assert results["KXNBAGAME-25DEC19OKCMIN-OKC"] == ("no", 1188)
    assert results["KXNBAGAME-25DEC25HOULAL-LAL"] == ("no", 2103)
    assert results["KXNBAGAME-25DEC13SASOKC-SAS"] == ("yes", 1568)
    # importing again is idempotent
    again = await import_candle_files(bt_engine, nba_files[:1])
    assert again[0].snapshots == results[again[0].ticker][1]


async def test_buy_and_hold_returns_exactly_what_each_game_paid(
    bt_engine: AsyncEngine, nba: list[str], nba_files: list[Path]
) -> None:
    req = validate_request("buy_and_hold", {"size": 10}, *WIDE, market_filter=MarketFilter(series=["KXNBAGAME"]))
    rid = await run_backtest(bt_engine, req)
    res = await get_result(bt_engine, rid)
    execs = {e["ticker"]: e for e in await get_executions(bt_engine, rid)}
    assert res.status == "done"
    assert res.snapshots_processed == 1151 + 1232 + 1771 + 1188 + 2103 + 1568
    # By hand from the CSVs' first traded close P (no quote recorded: filled at that trade; fee
    # ceil(0.07 × 10 × P × (1 − P)) to the cent; settles at the final close's side):
    #   NYK May 0.63 → NO : fee ceil(0.16317) 0.17, P&L −6.30 − 0.17 = −6.47
    #   IND Jun 0.32 → YES: fee ceil(0.15232) 0.16, P&L +6.80 − 0.16 = +6.64
    #   NYK Dec 0.66 → YES: fee ceil(0.15708) 0.16, P&L +3.40 − 0.16 = +3.24
    #   OKC Dec 0.77 → NO : fee ceil(0.12397) 0.13, P&L −7.70 − 0.13 = −7.83
    #   LAL Dec 0.40 → NO : fee ceil(0.16800) 0.17, P&L −4.00 − 0.17 = −4.17
    #   SAS Dec 0.23 → YES: fee ceil(0.12397) 0.13, P&L +7.70 − 0.13 = +7.57    total −1.02, fees 0.92
    hand = {
        "KXNBAGAME-25MAY21INDNYK-NYK": ("0.63", "0.17", "-6.47"),
        "KXNBAGAME-25JUN19OKCIND-IND": ("0.32", "0.16", "6.64"),
        "KXNBAGAME-25DEC25CLENYK-NYK": ("0.66", "0.16", "3.24"),
        "KXNBAGAME-25DEC19OKCMIN-OKC": ("0.77", "0.13", "-7.83"),
        "KXNBAGAME-25DEC25HOULAL-LAL": ("0.40", "0.17", "-4.17"),
        "KXNBAGAME-25DEC13SASOKC-SAS": ("0.23", "0.13", "7.57"),
    }
    assert {t: (e["entry_price"], e["fees"], e["pnl"]) for t, e in execs.items()} == {
        t: (D(a), D(f), D(p)) for t, (a, f, p) in hand.items()
    }
    assert (res.total_pnl, res.fees_paid) == (D("-1.02"), D("0.92"))
    total = D(0)
    for path in nba_files:
        ticker, ask, fee, pnl = expected_game(path, 10)
        e = execs[ticker]
        assert (e["side"], e["size"], e["entry_price"], e["fees"], e["pnl"]) == ("yes", 10, ask, fee, pnl), ticker
        assert e["exit_reason"] == "settlement"
        assert e["entry_snapshot_source"] == "backfill"
        total += pnl
    assert res.total_pnl == total
    assert res.num_trades == 6
    assert res.metrics is not None
    assert res.metrics["num_trades"] == 6
    assert res.metrics["win_rate"] == 0.5  # three underdogs/favourites won, three lost
    assert res.equity_curve is not None
    assert res.equity_curve["equity"][-1] == pytest.approx(10_000 + float(total))
    assert res.feed_gaps == {"count": 0, "gaps": []}


async def test_per_event_path_over_the_real_games_matches_the_vectorised_one(
    bt_engine: AsyncEngine, nba: list[str]
) -> None:
    f = MarketFilter(series=["KXNBAGAME"])
    ids = []
    for vec in (True, False):
        req = validate_request(
            "fade_overreaction", {"lookback": 5, "threshold": 0.08, "hold": 10}, *WIDE, market_filter=f, vectorised=vec
        )
        ids.append(await run_backtest(bt_engine, req))
    a, b = [await get_result(bt_engine, i) for i in ids]
    assert a.metrics
    assert b.metrics
    assert (a.metrics["path"], b.metrics["path"]) == ("vectorised", "per_event")
    assert a.total_pnl == b.total_pnl
    assert a.num_trades == b.num_trades > 0
    ex = await get_executions(bt_engine, ids[0])
    assert {e["exit_reason"] for e in ex} <= {"signal", "settlement"}
    assert all(e["signal"]["signal"] in ("signal", "exit") for e in ex)


@pytest.mark.parametrize("vectorised", [True, False])
async def test_stored_signals_carry_the_datas_precision(
    bt_engine: AsyncEngine, nba: list[str], vectorised: bool
) -> None:
    """The issue's case: a 0.02 threshold stored moves like -0.020000000000000018. The games trade in whole
    cents, so every stored move is a whole number of cents, written as such."""
    params = {"lookback": 1, "threshold": 0.02, "hold": 3}
    f = MarketFilter(series=["KXNBAGAME"])
    req = validate_request("fade_overreaction", params, *WIDE, market_filter=f, vectorised=vectorised)
    ex = await get_executions(bt_engine, await run_backtest(bt_engine, req))
    moves = [e["signal"]["move"] for e in ex if "move" in e["signal"]]
    assert len(moves) > 10
    # Only moves beyond the threshold enter: 0.50 − 0.48 (0.020000000000000018 in floats) no longer does.
    assert min(abs(m) for m in moves) == 0.03
    for m in moves:
        assert m == round(m, 2), m
        assert len(repr(abs(m)).split(".")[1]) <= 2, m  # as stored: "-0.03", never "-0.030000000000000027"


async def test_filters_and_window_select_markets_and_rows(bt_engine: AsyncEngine, nba: list[str]) -> None:
    one = "KXNBAGAME-25DEC25CLENYK-NYK"
    ds = await load_dataset(bt_engine, *WIDE, MarketFilter(tickers=[one]))
    assert [m.ticker for m in ds.markets] == [one]
    assert ds.rows == 1771
    ds = await load_dataset(bt_engine, *WIDE, MarketFilter(events=["KXNBAGAME-25MAY21INDNYK"], categories=["Sports"]))
    assert [m.ticker for m in ds.markets] == ["KXNBAGAME-25MAY21INDNYK-NYK"]
    ds = await load_dataset(
        bt_engine,
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        MarketFilter(series=["KXNBAGAME"]),
    )
    assert len(ds.markets) == 4  # the December games
    assert (ds.ts_us[1:] >= ds.ts_us[:-1]).sum() >= ds.rows - 4  # sorted within each market


async def test_empty_window_is_no_data_and_stored_only_when_asked(bt_engine: AsyncEngine, nba: list[str]) -> None:
    f = MarketFilter(series=["KXNBAGAME"])
    req = validate_request(
        "fade_overreaction", {}, datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 2, 1, tzinfo=UTC), market_filter=f
    )
    async with bt_engine.connect() as c:
        before = (await c.execute(text("SELECT count(*) FROM backtest_results"))).scalar_one()
    seen: list[tuple[str, int, int | None]] = []
    with pytest.raises(
        NoDataError, match=r"^no snapshots between 2019-01-01T00:00:00Z and 2019-02-01T00:00:00Z in the 6 "
    ):
        await run_backtest(bt_engine, req, progress=lambda *a: seen.append(a))
    with pytest.raises(NoDataError):
        await enqueue_backtest(bt_engine, req)
    async with bt_engine.connect() as c:
        assert (await c.execute(text("SELECT count(*) FROM backtest_results"))).scalar_one() == before
    assert seen == []  # refused before any phase began

    res = await get_result(
        bt_engine, await run_backtest(bt_engine, req, keep_empty=True, progress=lambda *a: seen.append(a))
    )
    assert seen == [
        ("load", 0, None),
        ("load", 0, 0),
        ("simulate", 0, 0),
        ("simulate", 0, 0),
        ("persist", 0, 0),
        ("persist", 0, 0),
    ]
    assert res.status == "done"
    assert res.snapshots_processed == 0
    assert res.num_trades == 0
    assert res.metrics is not None
    assert res.metrics["message"] == "no snapshots in the window for the selected markets"


async def test_unresolved_markets_are_marked_and_gaps_in_the_window_are_recorded(bt_engine: AsyncEngine) -> None:
    t = f"KXTEST-{uuid.uuid4().hex[:6]}"
    t0 = datetime(2026, 1, 3, 12, tzinfo=UTC)
    async with Sink(bt_engine, batch_max_seconds=0.05) as sink:
        await sink.put(MarketRow(ticker=t, event_ticker="KXTEST-EV", series_ticker="KXTEST", status="active"))
        for i, (b, a) in enumerate([("0.40", "0.42"), ("0.45", "0.47")]):
            ts = t0.replace(minute=i)
            await sink.put(SnapshotRow(t, ts, "poll", ts, yes_bid=D(b), yes_ask=D(a), yes_ask_size=D(4)))
        await sink.flush()
    async with bt_engine.begin() as c:
        await c.execute(
            text(
                "INSERT INTO feed_gaps (key, detected_at, channel, market_ticker, cause, gap_start) "
                "VALUES (:k, :t, 'ticker', :m, 'disconnect', :t)"
            ),
            {"k": uuid.uuid4().hex, "t": t0, "m": t},
        )
    req = validate_request("buy_and_hold", {"size": 10}, *WIDE, market_filter=MarketFilter(tickers=[t]))
    res = await get_result(bt_engine, await run_backtest(bt_engine, req))
    (e,) = await get_executions(bt_engine, res.id)
    assert (e["size"], e["entry_price"], e["exit_reason"], e["exit_price"]) == (4, D("0.42"), "marked", D("0.45"))
    assert e["entry_snapshot_source"] == "poll"
    assert res.metrics is not None
    assert res.metrics["unresolved_markets"] == [t]
    assert res.feed_gaps is not None
    assert res.feed_gaps["count"] == 1
    assert res.feed_gaps["gaps"][0]["cause"] == "disconnect"


async def test_queue_worker_runs_queued_rows_and_records_failures(bt_engine: AsyncEngine, nba: list[str]) -> None:
    ok = await enqueue_backtest(
        bt_engine,
        validate_request("momentum", {"threshold": 0.1}, *WIDE, market_filter=MarketFilter(series=["KXNBAGAME"])),
    )
    assert (await get_result(bt_engine, ok)).status == "queued"
    async with bt_engine.begin() as c:  # a row a bad client could have stored: unknown parameter
        bad = (
            await c.execute(
                text(
                    "INSERT INTO backtest_results (strategy_name, strategy_version, params, window_start, window_end, "
                    "status) VALUES ('momentum', '1', '{\"nope\": 1}', :s, :e, 'queued') RETURNING id"
                ),
                {"s": WIDE[0], "e": WIDE[1]},
            )
        ).scalar_one()
    done = await execute_queued(bt_engine)
    assert set(done) >= {ok, bad}
    assert (await get_result(bt_engine, ok)).status == "done"
    failed = await get_result(bt_engine, bad)
    assert failed.status == "failed"
    assert failed.error is not None
    assert "nope" in failed.error
    assert await execute_queued(bt_engine) == []


async def test_bad_input_raises_invalid_input_naming_the_field(bt_engine: AsyncEngine) -> None:
    with pytest.raises(UnknownStrategyError) as e1:
        validate_request("nope", {}, *WIDE)
    with pytest.raises(InvalidInputError, match="threshold") as e2:
        validate_request("fade_overreaction", {"threshold": "high"}, *WIDE)
    with pytest.raises(InvalidInputError, match=r"^end \(.*\) must be after start") as e3:
        validate_request("fade_overreaction", {}, WIDE[1], WIDE[0])
    with pytest.raises(InvalidInputError, match=r"^start must lie between 2000 and 2100") as e4:
        validate_request("fade_overreaction", {}, datetime(1990, 1, 1, tzinfo=UTC), WIDE[1])
    with pytest.raises(InvalidInputError, match=r"^a ticker must not be empty$") as e5:
        validate_request("fade_overreaction", {}, *WIDE, market_filter=MarketFilter(tickers=["KX", " "]))
    assert isinstance(e1.value, InvalidInputError)
    assert [e.value.field for e in (e1, e2, e3, e4, e5)] == [
        "strategy",
        "params",
        "end",
        "start",
        "market_filter.tickers",
    ]
    with pytest.raises(InvalidInputError, match="must be after start"):  # the same rules for a request built by hand
        await run_backtest(bt_engine, BacktestRequest(strategy="momentum", start=WIDE[1], end=WIDE[0]))
    assert [field for field, _ in e2.value.errors] == ["params.threshold"]
    with pytest.raises(UnknownStrategyError):
        await run_backtest(bt_engine, BacktestRequest(strategy="nope", start=WIDE[0], end=WIDE[1]))
    with pytest.raises(NotFoundError):
        await get_result(bt_engine, uuid.uuid4())


def test_parse_candles_stores_the_trade_price_and_no_invented_quote(nba_dir: Path) -> None:
    """The candles hold trade prices only (PROVENANCE.md §1): the close is the last price, and no bid, ask or
    size is stored (an import once invented close ∓ half a cent)."""
    market, snaps = parse_candles(nba_dir / "42400406_OKC_at_IND_2025-06-19_candles.csv")
    assert (market.result, market.settlement_value, market.event_ticker) == ("yes", D(1), "KXNBAGAME-25JUN19OKCIND")
    assert len(snaps) == 1232
    s = snaps[0]
    assert (s.last_price, s.yes_bid, s.yes_ask, s.no_bid, s.no_ask) == (D("0.32"), None, None, None, None)
    assert (s.yes_bid_size, s.yes_ask_size) == (None, None)
    assert all(x.yes_bid is None and x.yes_ask is None and x.last_price is not None for x in snaps)
