"""``kalshi-analytics backtest …``: run, sweep, import-candles, worker, strategies."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from kalshi_analytics.backtests.progress import UNITS
from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.times import GRAMMAR, parse_time

backtest_app = typer.Typer(
    help="Backtest strategies on recorded snapshots (Kalshi fees, fills, settlement).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

StrategyOpt = Annotated[str, typer.Option("--strategy", "-s", help="Strategy name (see `backtest strategies`).")]
StartOpt = Annotated[str, typer.Option(help=f"Window start, inclusive: {GRAMMAR}.")]
EndOpt = Annotated[str, typer.Option(help="Window end, exclusive, same forms (default: now).")]
CategoryOpt = Annotated[list[str] | None, typer.Option("--category", help="Only these categories (repeatable).")]
SeriesOpt = Annotated[list[str] | None, typer.Option("--series", help="Only these series tickers (repeatable).")]
EventOpt = Annotated[list[str] | None, typer.Option("--event", help="Only these event tickers (repeatable).")]
TickerOpt = Annotated[list[str] | None, typer.Option("--ticker", help="Only these market tickers (repeatable).")]
CapitalOpt = Annotated[str, typer.Option("--capital", help="Starting cash in dollars.")]
MaxPosOpt = Annotated[str, typer.Option("--max-position", help="Contract limit per market and side.")]
KeepEmptyOpt = Annotated[
    bool,
    typer.Option(
        "--keep-empty",
        help="Run and store even when the filter names an unknown market or the window holds no snapshots "
        "(otherwise: one line and exit code 3, nothing stored).",
    ),
]
LatencyOpt = Annotated[
    str, typer.Option("--fill-latency", help="Seconds from decision to fill: the first snapshot at or after.")
]
SizeCapOpt = Annotated[
    str, typer.Option("--unknown-size-cap", help="Contracts a level is taken to hold where no size was recorded.")
]
WalkBookOpt = Annotated[
    bool, typer.Option("--walk-book/--no-walk-book", help="Walk recorded book levels beyond the touch.")
]
TradeQuotesOpt = Annotated[
    bool,
    typer.Option(
        "--trade-quotes/--no-trade-quotes",
        help="Quote snapshots that recorded a trade and no quote (candle imports) at the trade, flagged.",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress (default: bars on a terminal, else a line per phase).")
]

#: The option of each request field the service names in its errors (see :func:`kalshi_analytics.clihelp.error_line`).
OPTIONS = {
    "strategy": "--strategy",
    "params": "--param",
    "start": "--start",
    "end": "--end",
    "market_filter.categories": "--category",
    "market_filter.series": "--series",
    "market_filter.events": "--event",
    "market_filter.tickers": "--ticker",
    "initial_capital": "--capital",
    "max_position": "--max-position",
    "fill_latency_seconds": "--fill-latency",
    "unknown_size_cap": "--unknown-size-cap",
}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs; values read as JSON when they parse (numbers, true/false), else as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--param {item!r}: expected key=value")
        out[key.strip()] = _value(value.strip())
    return out


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``k=v1,v2,…`` per parameter."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise InvalidInputError(f"--grid {item!r}: expected key=v1,v2,...")
        out[key.strip()] = [_value(v.strip()) for v in values.split(",") if v.strip()]
    return out


def parse_when(value: str, name: str, now: datetime | None = None) -> datetime:
    """A window bound in the one time grammar (:data:`kalshi_analytics.times.GRAMMAR`)."""
    return parse_time(value, now=now, field=f"--{name}")


def _request(
    strategy: str,
    params: dict[str, Any],
    start: str,
    end: str,
    *,
    category: list[str] | None,
    series: list[str] | None,
    event: list[str] | None,
    ticker: list[str] | None,
    capital: str,
    max_position: str,
    vectorised: bool | None,
    fill: dict[str, Any],
) -> Any:
    """The service's request of a command's options; ``fill``: the fill model's (:func:`_fill_options`)."""
    from kalshi_analytics.backtests.data import MarketFilter
    from kalshi_analytics.backtests.service import validate_request

    now = datetime.now(UTC)
    try:
        cap, maxpos = Decimal(capital), Decimal(max_position)
    except ArithmeticError:
        raise InvalidInputError("--capital and --max-position must be numbers") from None
    return validate_request(
        strategy,
        params,
        parse_when(start, "start", now),
        parse_when(end, "end", now),
        market_filter=MarketFilter(
            categories=category or [], series=series or [], events=event or [], tickers=ticker or []
        ),
        initial_capital=cap,
        max_position=maxpos,
        vectorised=vectorised,
        **fill,
    )


def _fill_options(latency: str, size_cap: str, walk_book: bool, trade_quotes: bool) -> dict[str, Any]:
    """The fill model's request fields, the same for ``run`` and ``sweep`` (checked by the service)."""
    return {
        "fill_latency_seconds": latency,
        "unknown_size_cap": size_cap,
        "walk_book": walk_book,
        "trade_quotes": trade_quotes,
    }


def metrics_table(title: str, metrics: dict[str, Any], extra: dict[str, Any] | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = (
        "total_pnl",
        "return_pct",
        "num_trades",
        "num_fills",
        "fees_paid",
        "win_rate",
        "profit_factor",
        "sharpe",
        "sortino",
        "max_drawdown",
        "max_drawdown_days",
        "exposure_time",
        "brier_score",
        "markets",
        "snapshots",
        "path",
    )
    for k in keys:
        v = metrics.get(k)
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v)))
    if metrics.get("unresolved_markets"):
        table.add_row("unresolved (marked)", ", ".join(metrics["unresolved_markets"][:5]))
    for k, v in (extra or {}).items():
        table.add_row(k, str(v))
    return table


async def open_cache(engine: Any, data_dir: Path) -> Any:
    from kalshi_analytics.backtests.cache import ColumnarCache, cache_key

    return ColumnarCache(data_dir / "columnar-cache" / await cache_key(engine))


class PhaseDisplay:
    """Shows a run's phases (:mod:`kalshi_analytics.backtests.progress`) on stderr: bars on a terminal (with the
    time left when ``eta``), a line per finished phase otherwise, nothing when ``quiet``. A context manager: the
    bars stay on screen when it ends, above the results."""

    def __init__(self, quiet: bool, *, eta: bool = False, units: Mapping[str, str] | None = None) -> None:
        self.console = Console(stderr=True)
        self.mode = "off" if quiet else ("bars" if self.console.is_terminal else "lines")
        self.units = {**UNITS, **(units or {})}
        columns: list[ProgressColumn] = [
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
        ]
        if eta:
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        self.bars = Progress(*columns, console=self.console)
        self.tasks: dict[str, TaskID] = {}
        self.started: dict[str, float] = {}

    def __enter__(self) -> PhaseDisplay:
        return self

    def __exit__(self, *_: object) -> None:
        if self.tasks:
            self.bars.stop()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if self.mode == "off":
            return
        started = self.started.setdefault(phase, time.perf_counter())
        unit = self.units.get(phase, "")
        if self.mode == "bars":
            if not self.tasks:
                self.bars.start()  # only once there is something to show: an early error stays one line
            if phase not in self.tasks:
                self.tasks[phase] = self.bars.add_task(phase, total=total, unit=unit)
            self.bars.update(self.tasks[phase], completed=done, total=total)
        elif done == total:
            typer.echo(f"{phase}: {done:,} {unit} in {time.perf_counter() - started:.2f} s", err=True)


@backtest_app.command("run")
def run_cmd(  # noqa: PLR0917 - a typer command: one parameter per CLI option
    strategy: StrategyOpt,
    start: StartOpt,
    end: EndOpt = "now",
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Strategy parameter key=value.")] = None,
    category: CategoryOpt = None,
    series: SeriesOpt = None,
    event: EventOpt = None,
    ticker: TickerOpt = None,
    capital: CapitalOpt = "10000",
    max_position: MaxPosOpt = "10000",
    fill_latency: LatencyOpt = "0",
    unknown_size_cap: SizeCapOpt = "100",
    walk_book: WalkBookOpt = True,
    trade_quotes: TradeQuotesOpt = True,
    per_event: Annotated[bool, typer.Option("--per-event", help="Use the per-event hook even if vectorised.")] = False,
    cache: Annotated[bool, typer.Option(help="Serve the window from the columnar cache in the data dir.")] = True,
    keep_empty: KeepEmptyOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run one backtest, store it (backtest_results + executions) and print its metrics."""
    from kalshi_analytics.backtests.service import get_result, run_backtest
    from kalshi_analytics.clihelp import error_line, fail, run, settings
    from kalshi_analytics.db.connect import open_database

    try:
        req = _request(
            strategy,
            parse_params(param or []),
            start,
            end,
            category=category,
            series=series,
            event=event,
            ticker=ticker,
            capital=capital,
            max_position=max_position,
            vectorised=False if per_event else None,
            fill=_fill_options(fill_latency, unknown_size_cap, walk_book, trade_quotes),
        )
    except InvalidInputError as exc:
        fail(error_line(exc, OPTIONS))
    s = settings()
    console = Console(width=120)

    async def go() -> Any:
        _choice, engine = await open_database(s, upgrade=False)
        try:
            col_cache = await open_cache(engine, s.data_dir) if cache else None
            with PhaseDisplay(quiet) as progress:
                rid = await run_backtest(engine, req, cache=col_cache, progress=progress, keep_empty=keep_empty)
            return await get_result(engine, rid)
        finally:
            await engine.dispose()

    res = run(go, OPTIONS)
    metrics = res.metrics or {}
    timings = metrics.get("timings", {})
    extra = {"id": res.id, "load s": f"{timings.get('load_seconds', 0):.3f}"}
    extra["simulate s"] = f"{timings.get('simulate_seconds', 0):.3f}"
    if metrics.get("message"):
        extra["note"] = metrics["message"]
    console.print(metrics_table(f"{res.strategy_name} v{res.strategy_version}  {res.params}", metrics, extra))


# --------------------------------------------------------------------------------------------------- sweep
@backtest_app.command("sweep")
def sweep_cmd(  # noqa: PLR0917 - a typer command: one parameter per CLI option
    strategy: StrategyOpt,
    start: StartOpt,
    end: EndOpt = "now",
    grid: Annotated[list[str] | None, typer.Option("--grid", "-g", help="key=v1,v2,... (repeatable).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Fixed parameter key=value.")] = None,
    category: CategoryOpt = None,
    series: SeriesOpt = None,
    event: EventOpt = None,
    ticker: TickerOpt = None,
    capital: CapitalOpt = "10000",
    max_position: MaxPosOpt = "10000",
    fill_latency: LatencyOpt = "0",
    unknown_size_cap: SizeCapOpt = "100",
    walk_book: WalkBookOpt = True,
    trade_quotes: TradeQuotesOpt = True,
    workers: Annotated[int, typer.Option(help="Processes (default: all cores).")] = 0,
    keep_empty: KeepEmptyOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a strategy over a parameter grid on all cores (at most BACKTEST_SWEEP_MAX_RUNS runs); data is loaded
    once and shared via a columnar cache."""
    from kalshi_analytics.backtests.service import check_data, grid_runs
    from kalshi_analytics.backtests.sweep import run_sweep
    from kalshi_analytics.clihelp import error_line, fail, run, settings
    from kalshi_analytics.db.connect import open_database

    s = settings()
    options = {**OPTIONS, "params": "--grid/--param"}
    try:
        fixed = parse_params(param or [])
        axes = parse_grid(grid or [])
        if not axes:
            raise InvalidInputError("give at least one --grid key=v1,v2")
        combos = grid_runs(axes, max_runs=s.backtest_sweep_max_runs, field="--grid")
        fill = _fill_options(fill_latency, unknown_size_cap, walk_book, trade_quotes)
        reqs = [
            _request(
                strategy,
                {**fixed, **c},
                start,
                end,
                category=category,
                series=series,
                event=event,
                ticker=ticker,
                capital=capital,
                max_position=max_position,
                vectorised=None,
                fill=fill,
            )
            for c in combos
        ]
    except InvalidInputError as exc:
        fail(error_line(exc, options))
    console = Console(width=140)
    n_workers = workers or os.cpu_count() or 1

    async def go() -> list[tuple[Any, Any]]:
        _choice, engine = await open_database(s, upgrade=False)
        try:
            if not keep_empty:
                await check_data(engine, reqs[0])  # every run has the same window and filter
            with PhaseDisplay(quiet, eta=True, units={"persist": "runs"}) as progress:
                return await run_sweep(engine, reqs, await open_cache(engine, s.data_dir), n_workers, progress)
        finally:
            await engine.dispose()

    saved = run(go, options)
    console.print(sweep_table(f"sweep {strategy}: {len(saved)} runs", list(axes), saved))


def sweep_table(title: str, axes: list[str], saved: list[tuple[Any, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("id", *axes, "total_pnl", "trades", "fees", "sharpe", "max_dd", "brier"):
        table.add_column(col, justify="right")
    for rid, out in sorted(saved, key=lambda x: -Decimal(x[1].metrics["total_pnl"])):
        m = out.metrics
        table.add_row(
            str(rid)[:8],
            *(str(out.params.get(k)) for k in axes),
            m["total_pnl"],
            str(m["num_trades"]),
            m["fees_paid"],
            "-" if m["sharpe"] is None else f"{m['sharpe']:.3f}",
            f"{m['max_drawdown']:.2f}",
            "-" if m["brier_score"] is None else f"{m['brier_score']:.4f}",
        )
    return table


@backtest_app.command("import-candles")
def import_candles_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Candle CSV files or folders of them.")],
) -> None:
    """Import NBA 1-minute candle CSVs backfill-style (markets + snapshots through the recorder's sink).

    The CSVs hold trade prices only: the close is stored as the last price, no bid/ask is invented (backtests
    price such snapshots at the trade, flagged); the result is inferred from the final close.
    """
    from kalshi_analytics.backtests.candles_import import import_candle_files
    from kalshi_analytics.clihelp import fail, run, settings
    from kalshi_analytics.db.connect import open_database

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.glob("*.csv")))
        elif p.is_file():
            files.append(p)
        else:
            fail(f"{p}: no such file or folder")
    if not files:
        fail("no CSV files given")
    s = settings().for_real_data()  # real Kalshi history: prod unless KALSHI_ENV says otherwise

    async def go() -> Any:
        choice, engine = await open_database(s, upgrade=True)
        try:
            return choice, await import_candle_files(engine, files)
        finally:
            await engine.dispose()

    try:
        choice, done = run(go)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"database:   {choice.display}")
    new = sum(d.new_snapshots for d in done)
    fresh = sum(1 for d in done if d.new_snapshots)
    title = (
        f"imported {fresh} of {len(done)} files: {new} new snapshots"
        if new
        else f"nothing new: all {len(done)} files were imported before"
    )
    table = Table(title=title, title_justify="left")
    for col in ("ticker", "snapshots", "new", "first", "last", "result"):
        table.add_column(col)
    for d in done:
        table.add_row(d.ticker, str(d.snapshots), str(d.new_snapshots), str(d.first_close), str(d.last_close), d.result)
    Console(width=120).print(table)


@backtest_app.command("worker")
def worker_cmd(
    once: Annotated[bool, typer.Option(help="Process the queue once and exit.")] = True,
) -> None:
    """Run queued backtests (status 'queued') until none is left."""
    from kalshi_analytics.backtests.service import execute_queued
    from kalshi_analytics.clihelp import run, settings
    from kalshi_analytics.db.connect import open_database

    s = settings()

    async def go() -> int:
        _choice, engine = await open_database(s, upgrade=False)
        try:
            return len(await execute_queued(engine, cache=await open_cache(engine, s.data_dir)))
        finally:
            await engine.dispose()

    typer.echo(f"processed {run(go)} queued backtests")


@backtest_app.command("strategies")
def strategies_cmd() -> None:
    """List the registered strategies and their parameters."""
    from kalshi_analytics.strategies import list_strategies

    table = Table(title="strategies", title_justify="left")
    for col in ("name", "version", "vectorised", "parameters", "description"):
        table.add_column(col)
    for st in list_strategies():
        props = st["params_schema"].get("properties", {})
        ps = ", ".join(f"{k}={v.get('default', '?')}" for k, v in props.items())
        table.add_row(st["name"], st["version"], "yes" if st["vectorised"] else "no", ps, st["description"])
    Console(width=160).print(table)
