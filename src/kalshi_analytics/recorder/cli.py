"""Recorder commands: ``recorder`` (record, leader-elected), ``backfill`` (history from REST), ``gaps`` (coverage)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kalshi_analytics.clihelp import fail, run, settings, window
from kalshi_analytics.config import Settings
from kalshi_analytics.recorder.coverage import CoverageReport, GapInfo, coverage, format_duration
from kalshi_analytics.times import GRAMMAR

SOURCES = ("poll", "websocket", "backfill")


def install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run_recorder(
    s: Settings,
    engine: Any,
    *,
    series: list[str],
    events: list[str],
    categories: list[str],
    status: str | None,
    metrics_port: int | None,
    duration: float | None,
    stop: asyncio.Event,
    announce: bool = True,
    metrics_host: str = "127.0.0.1",
) -> None:
    from kalshi_analytics.recorder.poll import Selection
    from kalshi_analytics.recorder.service import RecorderConfig, RecorderService

    selection = Selection(status=status, series=tuple(series), events=tuple(events), categories=tuple(categories))
    service = RecorderService(
        engine, s, RecorderConfig(selection=selection, metrics_port=metrics_port, metrics_addr=metrics_host)
    )
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(0.05)
    if announce:
        typer.echo(f"recorder:   {selection.describe()} from {s.api_base}")
        typer.echo(f"metrics:    {service.metrics_url or 'off (--metrics-port N to serve them)'}")
        typer.echo("coverage:   kalshi-analytics gaps  (feed gaps and their repairs)")
    # Until stopped, the time is up, or the recorder ends by itself (e.g. refused at start-up: said at once).
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    stop.set()
    await task


def recorder(  # noqa: PLR0917 - a typer command: one parameter per CLI option
    series: Annotated[list[str] | None, typer.Option("--series", help="Record this series (repeatable).")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", help="Record this event (repeatable).")] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Record the series of this category (repeatable).")
    ] = None,
    status: Annotated[str, typer.Option(help="Market status filter: open, unopened, paused, closed, all.")] = "open",
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this port (0 = any).")
    ] = 9464,
    metrics_host: Annotated[
        str,
        typer.Option(
            "--metrics-host", help="Address the metrics listen on (0.0.0.0 for a Prometheus on another host)."
        ),
    ] = "127.0.0.1",
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Record markets into PostgreSQL (poll + WebSocket + gap repair); a second instance waits as hot standby."""
    from kalshi_analytics.db.connect import open_database

    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=True)
        typer.echo(f"database:   {choice.display}  (KALSHI_ENV={choice.env})")
        stop = asyncio.Event()
        install_stop(stop)
        try:
            await run_recorder(
                s,
                engine,
                series=series or [],
                events=event or [],
                categories=category or [],
                status=None if status == "all" else status,
                metrics_port=metrics_port,
                duration=duration,
                stop=stop,
                metrics_host=metrics_host,
            )
        finally:
            await engine.dispose()

    run(go)


def backfill(
    ticker: Annotated[list[str] | None, typer.Option("--ticker", help="Market ticker (repeatable).")] = None,
    series: Annotated[list[str] | None, typer.Option("--series", help="Every market of a series.")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", help="Every market of an event.")] = None,
    since: Annotated[str, typer.Option(help=f"Window start: {GRAMMAR}.")] = "",
    until: Annotated[str, typer.Option(help="Window end, same forms (default: now).")] = "now",
) -> None:
    """Fill history from REST: 1-minute candlesticks as snapshots, and trades. Re-running adds nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kalshi_analytics.db.connect import open_database
    from kalshi_analytics.kalshi.rest import KalshiRestClient
    from kalshi_analytics.recorder.backfill import backfill as do_backfill

    if not (ticker or series or event):
        fail("give at least one --ticker, --series or --event")
    if not since:
        fail("--since is required")
    start, end = window(since, until, ("--since", "--until"))
    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=True)
        try:
            async with KalshiRestClient.from_settings(s) as rest:
                with Progress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
                ) as progress:
                    task = progress.add_task("markets", total=None)

                    def on_progress(t: str, done: int, total: int) -> None:
                        progress.update(task, completed=done, total=total, description=t)

                    result = await do_backfill(
                        rest,
                        engine,
                        tickers=ticker or [],
                        series=series or [],
                        events=event or [],
                        since=start,
                        until=end,
                        on_progress=on_progress,
                    )
            typer.echo(f"database:  {choice.display}")
            for line in result.lines():
                typer.echo(line)
        finally:
            await engine.dispose()

    run(go)


def _outcome(g: GapInfo) -> str:
    if g.repaired_at is not None:
        return f"{g.repair_method or '?'} at {g.repaired_at.isoformat()}"
    if g.unrepairable_reason is not None:
        return f"UNREPAIRABLE: {g.unrepairable_reason}"
    return "OPEN"


def render(report: CoverageReport, console: Console) -> None:
    title = f"Coverage {report.since.isoformat()} → {report.until.isoformat()}"
    table = Table(title=title, title_justify="left")
    table.add_column("market")
    table.add_column("gaps", justify="right")
    table.add_column("open", justify="right")
    table.add_column("repaired", justify="right")
    table.add_column("gap time", justify="right")
    table.add_column("repaired by")
    for s in SOURCES:
        table.add_column(s, justify="right")
    for m in report.markets:
        table.add_row(
            m.ticker,
            str(m.gaps),
            str(m.gaps_open),
            str(m.gaps_repaired),
            format_duration(m.gap_seconds) if m.gaps else "-",
            ", ".join(f"{k}×{n}" for k, n in sorted(m.repair_methods.items())) or "-",
            *(str(m.snapshots.get(s, 0)) for s in SOURCES),
        )
    if report.markets:
        console.print(table)
    else:
        console.print(f"{title}: no market gaps and no snapshots in the window")
    subs = Table(title="Subscription-wide gaps (all markets of a subscription)", title_justify="left")
    for col in ("start", "channel", "sid", "cause", "duration", "repaired"):
        subs.add_column(col)
    for g in report.subscription_gaps:
        subs.add_row(
            g.gap_start.isoformat(),
            g.channel,
            "-" if g.sid is None else str(g.sid),
            g.cause,
            format_duration(g.seconds),
            _outcome(g),
        )
    if report.subscription_gaps:
        console.print(subs)
    else:
        console.print("no subscription-wide gaps in the window")


def gaps(
    since: Annotated[str, typer.Option(help=f"Window start: {GRAMMAR}.")] = "-1d",
    until: Annotated[str, typer.Option(help="Window end, same forms.")] = "now",
    ticker: Annotated[str | None, typer.Option(help="Only this market (plus subscription-wide gaps).")] = None,
) -> None:
    """Per-market coverage of a window: feed gaps (repaired or open, and how) and snapshots per source."""
    from kalshi_analytics.db.connect import open_database

    start, end = window(since, until, ("--since", "--until"))
    s = settings()

    async def go() -> CoverageReport:
        _choice, engine = await open_database(s, upgrade=False)
        try:
            async with engine.connect() as conn:
                return await coverage(conn, start, end, ticker)
        finally:
            await engine.dispose()

    render(run(go), Console(width=160))
