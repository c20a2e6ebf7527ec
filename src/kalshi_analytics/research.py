"""Notebook research API: DataFrames in, backtests out, matplotlib figures back — all synchronous.

Which database: the ``url`` argument, else ``DB_URL`` (the product's setting; notebooks run by the test suite get
it through the kernel's environment), else the embedded PostgreSQL the CLI uses — its prod database unless
``KALSHI_ENV`` says otherwise: research is about real markets (the imported history included), and the
simulator's markets, recorded by default, live in their own database.

    from kalshi_analytics import research
    snaps = research.load_snapshots("2025-12-01", "2026-01-01", series=["KXNBAGAME"])
    result = research.run_backtest("fade_overreaction", {"threshold": 0.08}, "2025-01-01", "2026-01-01")
    research.plot_equity(result); research.plot_calibration(result)
    paper = research.load_paper_session("0b6f…")  # .fills, .positions, .equity, .events, .session

The functions work inside Jupyter's running event loop: each call runs its coroutine on a private thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.backtests.data import MarketFilter, load_dataset
from kalshi_analytics.backtests.service import (
    BacktestOutcome,
    check_data,
    compute_backtest,
    get_executions,
    get_result,
    save_outcome,
    validate_request,
)
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.times import parse_time

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

T = TypeVar("T")
When = str | date | datetime


def database_url(url: str | None = None) -> str:
    if url:
        return url
    from kalshi_analytics.config import load_settings
    from kalshi_analytics.db.connect import open_database

    settings = load_settings().for_real_data()
    if not structlog.is_configured():
        # A notebook is not a service log: warnings only, plain text (structlog's default colours its lines).
        configure_logging("WARNING", settings.log_format)

    async def prepare() -> str:
        # The embedded database is ours to keep at head, as `up` does (the prod one may be new: `up` ran sim);
        # an external database is migrated by whoever runs it.
        choice, engine = await open_database(settings, upgrade=not settings.db_url)
        await engine.dispose()
        return choice.url

    return _sync(prepare)


def _sync(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` to completion on a private thread (works under Jupyter's running event loop)."""

    async def main() -> T:
        return await fn()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _with_engine(url: str | None, fn: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    target = database_url(url)

    async def go() -> T:
        engine = create_engine(target, pool_size=2)
        try:
            return await fn(engine)
        finally:
            await engine.dispose()

    return _sync(go)


def _when(v: When) -> datetime:
    """A window bound: a datetime (naive = UTC), a date, or text in the one time grammar (``-1d``, ``now``, ISO)."""
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    return parse_time(v)


def _filter(
    tickers: Sequence[str] | None,
    series: Sequence[str] | None,
    events: Sequence[str] | None,
    categories: Sequence[str] | None,
) -> MarketFilter:
    return MarketFilter(
        tickers=list(tickers or []),
        series=list(series or []),
        events=list(events or []),
        categories=list(categories or []),
    )


def load_markets(*, url: str | None = None, **filters: Sequence[str]) -> pd.DataFrame:
    """The markets matching ``tickers=/series=/events=/categories=`` with their results and fee settings."""
    import pandas as pd

    from kalshi_analytics.backtests.data import load_markets as _load

    f = _filter(filters.get("tickers"), filters.get("series"), filters.get("events"), filters.get("categories"))

    async def go(engine: AsyncEngine) -> list[Any]:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            return await _load(raw.driver_connection, f)

    rows = _with_engine(url, go)
    return pd.DataFrame(
        [
            {
                "ticker": m.ticker,
                "event_ticker": m.event_ticker,
                "series_ticker": m.series_ticker,
                "category": m.category,
                "status": m.status,
                "result": m.result,
                "close_time": m.close_time,
            }
            for m in rows
        ]
    )


def load_snapshots(
    start: When,
    end: When,
    *,
    tickers: Sequence[str] | None = None,
    series: Sequence[str] | None = None,
    events: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    url: str | None = None,
) -> pd.DataFrame:
    """Snapshots with ``start <= ts < end`` as a pandas DataFrame (float prices in dollars, ``ts`` UTC), loaded
    with the engine's columnar binary COPY. Adds ``mid`` = (yes_bid + yes_ask) / 2."""
    import numpy as np
    import pandas as pd

    from kalshi_analytics.backtests.data import SOURCES

    f = _filter(tickers, series, events, categories)
    ds = _with_engine(url, lambda e: load_dataset(e, _when(start), _when(end), f))
    counts = np.diff(ds.offsets)
    df = pd.DataFrame(
        {
            "ticker": pd.Categorical.from_codes(
                np.repeat(np.arange(len(ds.markets)), counts), [m.ticker for m in ds.markets]
            ),
            "ts": pd.to_datetime(ds.ts_us, unit="us", utc=True),
            "source": pd.Categorical.from_codes(ds.source.astype(np.int64), list(SOURCES)),
        }
    )
    for name, col in ds.columns.items():
        if name != "ts":
            df[name] = col
    df["mid"] = (df["yes_bid"] + df["yes_ask"]) / 2
    return df


def load_trades(
    start: When, end: When, *, tickers: Sequence[str] | None = None, url: str | None = None
) -> pd.DataFrame:
    """Public trades with ``start <= ts < end`` (prices and counts as floats)."""
    import pandas as pd

    async def go(engine: AsyncEngine) -> list[Any]:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            drv: Any = raw.driver_connection
            return list(
                await drv.fetch(
                    "SELECT trade_id, ticker, ts, yes_price::float8 AS yes_price, no_price::float8 AS no_price, "
                    "count::float8 AS count, taker_side, source FROM trades WHERE ts >= $1 AND ts < $2 "
                    "AND (cardinality($3::text[]) = 0 OR ticker = ANY($3::text[])) ORDER BY ticker, ts",
                    _when(start),
                    _when(end),
                    list(tickers or []),
                )
            )

    rows = _with_engine(url, go)
    cols = ["trade_id", "ticker", "ts", "yes_price", "no_price", "count", "taker_side", "source"]
    return pd.DataFrame([dict(r) for r in rows], columns=cols)


@dataclass
class ResearchResult:
    """A backtest run from a notebook: metrics, executions and equity curve as pandas objects."""

    id: Any
    strategy: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    executions: pd.DataFrame
    equity: pd.Series
    outcome: BacktestOutcome


def run_backtest(
    strategy: str,
    params: dict[str, Any] | None = None,
    start: When = "2000-01-01",
    end: When = "2100-01-01",
    *,
    tickers: Sequence[str] | None = None,
    series: Sequence[str] | None = None,
    events: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    save: bool = True,
    keep_empty: bool = False,
    url: str | None = None,
    **options: Any,
) -> ResearchResult:
    """Run (and by default store) a backtest; ``options`` are the request's other fields (initial_capital, …).

    A request that selects no data (an unknown market, a filter nothing matches, a window without snapshots)
    raises the service's :class:`~kalshi_analytics.errors.NoDataError`, as the CLI and the API answer it, and
    stores nothing — unless ``keep_empty``: then the empty run is returned (and stored, with ``save``)."""
    import pandas as pd

    req = validate_request(
        strategy,
        params,
        _when(start),
        _when(end),
        market_filter=_filter(tickers, series, events, categories),
        **options,
    )

    async def go(engine: AsyncEngine) -> tuple[Any, BacktestOutcome]:
        if not keep_empty:
            await check_data(engine, req)
        out = await compute_backtest(engine, req)
        rid = None
        if save:
            from kalshi_analytics.backtests.service import _insert_request

            rid = await _insert_request(engine, req, out.strategy_version, out.params, "running")
            await save_outcome(engine, rid, out)
        return rid, out

    rid, out = _with_engine(url, go)
    ex = pd.DataFrame(
        [
            {
                "ticker": e.ticker,
                "side": e.side,
                "size": float(e.size),
                "entry_ts": e.entry_ts,
                "entry_price": float(e.entry_price),
                "exit_ts": e.exit_ts,
                "exit_price": None if e.exit_price is None else float(e.exit_price),
                "exit_reason": e.exit_reason,
                "fees": float(e.fees),
                "pnl": None if e.pnl is None else float(e.pnl),
                "outcome": e.outcome,
                "signal": e.signal,
            }
            for e in out.sim.executions
        ]
    )
    equity = pd.Series(out.sim.equity, index=pd.to_datetime(out.sim.equity_ts, unit="s", utc=True), name="equity")
    return ResearchResult(rid, strategy, out.params, out.metrics, ex, equity, out)


def load_result(result_id: Any, *, url: str | None = None) -> dict[str, Any]:
    """A stored backtest (as the API returns it) plus its executions."""

    async def go(engine: AsyncEngine) -> dict[str, Any]:
        res = await get_result(engine, result_id)
        return {"result": res.model_dump(), "executions": await get_executions(engine, result_id)}

    return _with_engine(url, go)


@dataclass
class PaperSessionData:
    """A paper session from a notebook: its summary and what it did, as pandas DataFrames.

    ``session`` and ``performance`` are the API's answers (``getPaperSession``; the performance of
    ``getStrategyPerformance``'s ``sessions``) with exact decimals; in the frames money, prices and counts are
    floats, times UTC."""

    id: uuid.UUID
    session: dict[str, Any]
    performance: dict[str, Any]
    fills: pd.DataFrame
    positions: pd.DataFrame
    equity: pd.DataFrame
    events: pd.DataFrame


_FILL_COLUMNS = [
    *("id", "ticker", "side", "action", "price", "count", "fee", "cash_after", "ts", "source", "signal"),
    "committed_at",
]
_POSITION_COLUMNS = ["ticker", "side", "contracts", "avg_price", "mark", "unrealized_pnl", "updated_at"]
_EVENT_COLUMNS = ["id", "at", "kind", "ticker", "until", "details", "recorded_at"]
_MONEY = {"price", "count", "fee", "cash_after", "contracts", "avg_price", "mark", "unrealized_pnl", "equity", "cash"}


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Pydantic rows as a DataFrame of ``columns``, decimals as floats (None as NaN)."""
    import pandas as pd

    records = [r.model_dump() for r in rows]
    df = pd.DataFrame(records, columns=columns)
    for c in columns:
        if c in _MONEY:
            df[c] = pd.to_numeric(df[c].map(lambda v: None if v is None else float(v)), errors="coerce")
    return df


def load_paper_session(session_id: uuid.UUID | str, *, url: str | None = None) -> PaperSessionData:
    """A paper session (as ``kalshi-analytics live start`` or ``POST /api/v1/paper-sessions`` made it): every
    fill in commit order, every position (closed ones with 0 contracts), its equity points and its events.
    An unknown id raises :class:`~kalshi_analytics.errors.NotFoundError`, a malformed one
    :class:`~kalshi_analytics.errors.InvalidInputError`."""
    from kalshi_analytics.errors import InvalidInputError
    from kalshi_analytics.live import service as live

    try:
        sid = session_id if isinstance(session_id, uuid.UUID) else uuid.UUID(str(session_id))
    except ValueError:
        raise InvalidInputError(f"not a session id: {session_id!r}", field="session_id") from None
    page = 1000

    async def go(engine: AsyncEngine) -> tuple[Any, ...]:
        view = await live.get_session(engine, sid)
        fills: list[Any] = []
        while True:
            more = await live.get_fills(engine, sid, after=fills[-1].id if fills else 0, limit=page)
            fills += more
            if len(more) < page:
                break
        return (
            view,
            await live.session_performance(engine, view),
            fills,
            await live.get_positions(engine, sid, open_only=False),
            await live.get_equity(engine, sid),
            await live.get_events(engine, sid),
        )

    view, perf, fills, positions, equity, events = _with_engine(url, go)
    return PaperSessionData(
        id=sid,
        session=view.model_dump(),
        performance=perf.model_dump(),
        fills=_frame(fills, _FILL_COLUMNS),
        positions=_frame(positions, _POSITION_COLUMNS),
        equity=_frame(equity, ["ts", "equity", "cash"]),
        events=_frame(events, _EVENT_COLUMNS),
    )


def import_candles(paths: Sequence[str | Path], *, url: str | None = None) -> pd.DataFrame:
    """Import NBA candle CSVs (see :mod:`kalshi_analytics.backtests.candles_import`); one row per file."""
    import pandas as pd

    from kalshi_analytics.backtests.candles_import import import_candle_files

    files = [Path(p) for p in paths]
    done = _with_engine(url, lambda e: import_candle_files(e, files))
    return pd.DataFrame([d.__dict__ for d in done])


def plot_equity(result: ResearchResult) -> Figure:
    """Equity curve (daily marks) and the cumulative realised P&L of executions by exit time."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    if len(result.equity):
        ax.step(result.equity.index, result.equity.values, where="post", label="equity (marked at the bid)")
    ex = result.executions
    if len(ex):
        realised = ex.sort_values("exit_ts")
        start = float(result.outcome.sim.initial_capital)
        ax.plot(realised["exit_ts"], start + realised["pnl"].cumsum(), ".", ms=3, label="initial + realised P&L")
    ax.set_title(f"{result.strategy} {result.params}", fontsize=9)
    ax.set_ylabel("$")
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return fig


def plot_calibration(result: ResearchResult) -> Figure:
    """Entry price (bucketed) against how often that side won; the diagonal is perfect calibration."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    table = result.metrics.get("calibration") or []
    if table:
        xs = [r["mean_price"] for r in table]
        ys = [r["win_rate"] for r in table]
        sizes = [20 + 200 * r["trades"] / max(t["trades"] for t in table) for r in table]
        ax.scatter(xs, ys, s=sizes)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("price paid (forecast of the side winning)")
    ax.set_ylabel("realised win frequency")
    brier = result.metrics.get("brier_score")
    ax.set_title(f"calibration (Brier {brier})", fontsize=9)
    return fig
