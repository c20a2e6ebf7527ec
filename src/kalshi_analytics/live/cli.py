"""``kalshi-analytics live …``: the runner, and starting, watching, stopping and comparing paper sessions."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from kalshi_analytics.backtests.cli import (
    CapitalOpt,
    CategoryOpt,
    EventOpt,
    LatencyOpt,
    MaxPosOpt,
    SeriesOpt,
    SizeCapOpt,
    StrategyOpt,
    TickerOpt,
    TradeQuotesOpt,
    parse_params,
)
from kalshi_analytics.backtests.data import MarketFilter
from kalshi_analytics.clihelp import error_line, fail, run, settings
from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.live.schemas import PaperSessionCreate, PaperSessionView

live_app = typer.Typer(
    help="Paper trading: the live runner, and sessions that trade a strategy on the recorded feed.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: The option of each request field the service names in its errors.
OPTIONS = {
    "strategy": "--strategy",
    "strategy_version": "--strategy-version",
    "params": "--param",
    "market_filter": "--ticker/--series/--event/--category",
    "market_filter.categories": "--category",
    "market_filter.series": "--series",
    "market_filter.events": "--event",
    "market_filter.tickers": "--ticker",
    "initial_capital": "--capital",
    "max_position": "--max-position",
    "fill_latency_seconds": "--fill-latency",
    "unknown_size_cap": "--unknown-size-cap",
    "restart_policy": "--restart-policy",
    "session": "SESSION",
}
SessionArg = Annotated[str, typer.Argument(help="A session id (or a unique prefix of one, as `live list` shows).")]


async def _open() -> Any:
    from kalshi_analytics.db.connect import open_database

    _choice, engine = await open_database(settings(), upgrade=True)
    return engine


async def _resolve(engine: Any, text: str) -> uuid.UUID:
    """A session id from its text or a unique prefix of it."""
    from kalshi_analytics.live.service import list_sessions

    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    matches = [s.id for s in await list_sessions(engine, limit=10_000) if str(s.id).startswith(text.lower())]
    if len(matches) != 1:
        found = "no" if not matches else f"{len(matches)}"
        raise InvalidInputError(f"{found} session(s) start with {text!r}", field="session")
    return matches[0]


@live_app.command("runner")
def runner_cmd(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this port (0 = any).")
    ] = 9465,
) -> None:
    """Run the live runner (leader-elected: a second one waits as hot standby) until Ctrl-C."""
    from kalshi_analytics.live.metrics import serve_metrics
    from kalshi_analytics.live.runner import LiveRunner
    from kalshi_analytics.recorder.cli import install_stop

    host = settings().metrics_host

    async def go() -> None:
        engine = await _open()
        stop = asyncio.Event()
        install_stop(stop)
        runner = LiveRunner(engine)
        typer.echo(f"live runner: instance {runner.election.instance_id} (standby until it holds the lease)")
        server = None
        if metrics_port is not None:
            try:
                server = serve_metrics(runner.metrics, metrics_port, host)
            except OSError:  # taken (a second runner on this machine): any free port
                server = serve_metrics(runner.metrics, 0, host)
            typer.echo(f"metrics:     http://{host}:{server.server_port}/metrics")
        task = asyncio.create_task(runner.run(stop))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({task, stopper}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            await asyncio.wait_for(task, 30)
        finally:
            stopper.cancel()
            if server is not None:
                server.shutdown()
            await engine.dispose()
        typer.echo("live runner stopped")

    run(go, OPTIONS)


def _body(  # noqa: PLR0917 - the options of `live start`
    strategy: str,
    strategy_version: str | None,
    param: list[str] | None,
    category: list[str] | None,
    series: list[str] | None,
    event: list[str] | None,
    ticker: list[str] | None,
    capital: str,
    max_position: str,
    fill_latency: str,
    unknown_size_cap: str,
    trade_quotes: bool,
    name: str | None,
    restart_policy: str,
) -> PaperSessionCreate:
    def money(text: str, field: str) -> Decimal:
        try:
            return Decimal(text)
        except InvalidOperation:
            raise InvalidInputError(f"{text!r} is not a number", field=field) from None

    try:
        return PaperSessionCreate(
            strategy=strategy,
            strategy_version=strategy_version,
            params=parse_params(param or []),
            market_filter=MarketFilter(
                categories=category or [], series=series or [], events=event or [], tickers=ticker or []
            ),
            name=name,
            initial_capital=money(capital, "initial_capital"),
            max_position=money(max_position, "max_position"),
            fill_latency_seconds=float(money(fill_latency, "fill_latency_seconds")),
            unknown_size_cap=money(unknown_size_cap, "unknown_size_cap"),
            trade_quotes=trade_quotes,
            restart_policy=restart_policy,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInputError(str(err["msg"]), field=field) from None


@live_app.command("start")
def start_cmd(  # noqa: PLR0917 - a typer command: one parameter per CLI option
    strategy: StrategyOpt,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Strategy parameter key=value.")] = None,
    category: CategoryOpt = None,
    series: SeriesOpt = None,
    event: EventOpt = None,
    ticker: TickerOpt = None,
    capital: CapitalOpt = "10000",
    max_position: MaxPosOpt = "10000",
    fill_latency: LatencyOpt = "0",
    unknown_size_cap: SizeCapOpt = "100",
    trade_quotes: TradeQuotesOpt = True,
    name: Annotated[str | None, typer.Option(help="A name to know the session by.")] = None,
    strategy_version: Annotated[str | None, typer.Option(help="Default: the newest version.")] = None,
    restart_policy: Annotated[
        str, typer.Option(help="After runner downtime: resume (rebuild, trade on) or reset (a new session).")
    ] = "resume",
) -> None:
    """Start a paper session: the strategy trades the chosen markets from now on (the live runner runs it)."""
    from kalshi_analytics.live.service import backtest_gate, create_session, get_session

    try:
        body = _body(
            strategy,
            strategy_version,
            param,
            category,
            series,
            event,
            ticker,
            capital,
            max_position,
            fill_latency,
            unknown_size_cap,
            trade_quotes,
            name,
            restart_policy,
        )
    except InvalidInputError as exc:
        fail(error_line(exc, OPTIONS))

    async def go() -> tuple[PaperSessionView, Any]:
        engine = await _open()
        try:
            sid = await create_session(engine, body)
            return await get_session(engine, sid), await backtest_gate(engine, body.strategy)
        finally:
            await engine.dispose()

    view, gate = run(go, OPTIONS)
    typer.echo(f"session {view.id} started: {view.strategy} v{view.strategy_version} on {len(view.tickers)} markets")
    typer.echo(f"capital {view.initial_capital}; watch it with: kalshi-analytics live status {str(view.id)[:8]}")
    if not gate.passed:
        typer.echo(f"warning: {gate.note}", err=True)


def _sessions_table(sessions: list[PaperSessionView]) -> Table:
    table = Table(title="paper sessions")
    for col in ("id", "strategy", "status", "markets", "fills", "total P&L", "unrealised", "since", "data until"):
        table.add_column(col, justify="right" if col in ("markets", "fills", "total P&L", "unrealised") else "left")
    for s in sessions:
        table.add_row(
            str(s.id)[:8],
            f"{s.strategy} v{s.strategy_version}",
            s.status,
            str(len(s.tickers)),
            str(s.num_fills),
            str(s.total_pnl),
            str(s.unrealised_pnl),
            s.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            s.processed_until.strftime("%H:%M:%S") if s.processed_until else "-",
        )
    return table


@live_app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option(help="Only sessions of this status: running, stopped, failed.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Only sessions of this strategy.")] = None,
) -> None:
    """The paper sessions, newest first, with their P&L."""
    from kalshi_analytics.live.service import list_sessions

    if status is not None and status not in ("running", "stopped", "failed"):
        fail(f"--status must be running, stopped or failed, not {status!r}")

    async def go() -> list[PaperSessionView]:
        engine = await _open()
        try:
            return await list_sessions(engine, status=status, strategy=strategy)
        finally:
            await engine.dispose()

    Console(width=140).print(_sessions_table(run(go, OPTIONS)))


async def _status_view(engine: Any, sid: uuid.UUID) -> Group:
    from kalshi_analytics.live.service import get_fills, get_session, session_performance

    view = await get_session(engine, sid)
    perf = await session_performance(engine, view)
    head = Table(title=f"session {view.id}  {view.strategy} v{view.strategy_version}  ({view.status})")
    for col in ("equity", "total P&L", "realised", "unrealised", "Sharpe", "max drawdown", "fees", "fills", "skipped"):
        head.add_column(col, justify="right")
    head.add_row(
        str(view.equity),
        str(view.total_pnl),
        str(view.realised_pnl),
        str(view.unrealised_pnl),
        "-" if perf.sharpe_ratio is None else f"{perf.sharpe_ratio:.2f}",
        str(perf.max_drawdown),
        str(view.fees_paid),
        str(view.num_fills),
        ", ".join(f"{k} {v}" for k, v in sorted(view.skipped.items())) or "-",
    )
    positions = Table(title="positions")
    for col in ("ticker", "side", "contracts", "avg price", "mark", "unrealised"):
        positions.add_column(col)
    for p in perf.positions:
        positions.add_row(p.ticker, p.side, str(p.contracts), str(p.avg_price), str(p.mark), str(p.unrealized_pnl))
    fills = await get_fills(engine, sid, limit=100_000)
    recent = Table(title="recent fills")
    for col in ("time", "ticker", "side", "action", "price", "count", "fee"):
        recent.add_column(col)
    for f in fills[-10:]:
        recent.add_row(
            f.ts.strftime("%H:%M:%S.%f")[:-3], f.ticker, f.side, f.action, str(f.price), str(f.count), str(f.fee)
        )
    return Group(head, positions, recent)


@live_app.command("status")
def status_cmd(
    session: SessionArg,
    watch: Annotated[bool, typer.Option("--watch/--once", help="Keep the table updating (Ctrl-C to leave).")] = True,
    every: Annotated[float, typer.Option(help="Seconds between updates.")] = 1.0,
    duration: Annotated[float | None, typer.Option(help="Stop watching after this many seconds.")] = None,
) -> None:
    """P&L, positions and recent fills of a session; a live-updating table unless --once."""
    console = Console(width=140)

    async def go() -> None:
        engine = await _open()
        try:
            sid = await _resolve(engine, session)
            if not watch:
                console.print(await _status_view(engine, sid))
                return
            t0 = time.monotonic()
            with Live(await _status_view(engine, sid), console=console, refresh_per_second=4) as live:
                while duration is None or time.monotonic() - t0 < duration:
                    await asyncio.sleep(every)
                    live.update(await _status_view(engine, sid))
        finally:
            await engine.dispose()

    run(go, OPTIONS)


@live_app.command("stop")
def stop_cmd(session: SessionArg) -> None:
    """Stop a running session (it keeps its fills, positions and history, readable as before)."""
    from kalshi_analytics.live.service import stop_session

    async def go() -> uuid.UUID:
        engine = await _open()
        try:
            sid = await _resolve(engine, session)
            await stop_session(engine, sid)
            return sid
        finally:
            await engine.dispose()

    typer.echo(f"session {run(go, OPTIONS)} stopped")


@live_app.command("compare")
def compare_cmd(session: SessionArg) -> None:
    """Replay a session as a backtest and list every difference in fills and P&L, each explained."""
    from kalshi_analytics.live.compare import compare_session

    async def go() -> Any:
        engine = await _open()
        try:
            return await compare_session(engine, await _resolve(engine, session))
        finally:
            await engine.dispose()

    rep = run(go, OPTIONS)
    typer.echo(
        f"session {rep.session_id}: window {rep.window_start.isoformat()} .. {rep.window_end.isoformat()}\n"
        f"paper:    {rep.paper_fills} fills, P&L {rep.paper_pnl}\n"
        f"backtest: {rep.backtest_fills} fills, P&L {rep.backtest_pnl}"
    )
    if not rep.differences:
        typer.echo("no difference: the session did exactly what a backtest over the same data does")
        return
    table = Table(title=f"{len(rep.differences)} differences ({rep.unexplained} unexplained)")
    for col in ("kind", "time", "ticker", "side", "action", "price", "count", "cause", "why"):
        table.add_column(col)
    for d in rep.differences:
        table.add_row(
            d.kind,
            d.ts.strftime("%H:%M:%S.%f")[:-3] if d.ts else "",
            d.ticker or "",
            d.side or "",
            d.action or "",
            "" if d.price is None else str(d.price),
            "" if d.count is None else str(d.count),
            d.cause,
            d.explanation,
        )
    Console(width=160).print(table)
    if rep.unexplained:
        raise typer.Exit(1)
