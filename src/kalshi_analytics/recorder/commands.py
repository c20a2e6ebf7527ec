"""CLI commands of the recorder: ``recorder``, ``backfill``, and the recorder part of ``up``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from kalshi_analytics.config import KalshiEnv, Settings


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


def _parse_time(value: str, name: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        try:
            dt = datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            from kalshi_analytics.cli import fail

            fail(f"{name}: expected an ISO date/time (2026-11-01 or 2026-11-01T12:00Z) or Unix seconds, got {value!r}")
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


async def _run_recorder(
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
) -> None:
    from kalshi_analytics.recorder.poll import Selection
    from kalshi_analytics.recorder.service import RecorderConfig, RecorderService

    selection = Selection(status=status, series=tuple(series), events=tuple(events), categories=tuple(categories))
    service = RecorderService(engine, s, RecorderConfig(selection=selection, metrics_port=metrics_port))
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(0.05)
    if announce:
        typer.echo(f"recorder:   {selection.describe()} from {s.api_base}")
        typer.echo(f"metrics:    {service.metrics_url or 'off (--metrics-port N to serve them)'}")
        typer.echo("coverage:   kalshi-analytics gaps  (feed gaps and their repairs)")
    if duration is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
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
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
) -> None:
    """Record markets into PostgreSQL (poll + WebSocket + gap repair); a second instance waits as hot standby."""
    from kalshi_analytics.cli import run, settings
    from kalshi_analytics.database import open_database

    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=True)
        typer.echo(f"database:   {choice.display}")
        stop = asyncio.Event()
        _install_stop(stop)
        try:
            await _run_recorder(
                s,
                engine,
                series=series or [],
                events=event or [],
                categories=category or [],
                status=None if status == "all" else status,
                metrics_port=metrics_port,
                duration=duration,
                stop=stop,
            )
        finally:
            await engine.dispose()

    run(go)


def backfill(
    ticker: Annotated[list[str] | None, typer.Option("--ticker", help="Market ticker (repeatable).")] = None,
    series: Annotated[list[str] | None, typer.Option("--series", help="Every market of a series.")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", help="Every market of an event.")] = None,
    since: Annotated[str, typer.Option(help="Window start: ISO date/time (UTC) or Unix seconds.")] = "",
    until: Annotated[str | None, typer.Option(help="Window end (default: now).")] = None,
) -> None:
    """Fill history from REST: 1-minute candlesticks as snapshots, and trades. Re-running adds nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from kalshi_analytics.cli import CliError, fail, run, settings
    from kalshi_analytics.database import open_database
    from kalshi_analytics.kalshi.errors import KalshiError
    from kalshi_analytics.kalshi.rest import KalshiRestClient
    from kalshi_analytics.recorder.backfill import BackfillError
    from kalshi_analytics.recorder.backfill import backfill as do_backfill

    if not (ticker or series or event):
        fail("give at least one --ticker, --series or --event")
    if not since:
        fail("--since is required")
    start = _parse_time(since, "--since")
    end = _parse_time(until, "--until") if until else datetime.now(UTC)
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

                    try:
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
                    except (BackfillError, KalshiError) as exc:
                        raise CliError(str(exc)) from None
            typer.echo(f"database:  {choice.display}")
            for line in result.lines():
                typer.echo(line)
        finally:
            await engine.dispose()

    run(go)


@contextlib.asynccontextmanager
async def simulator_for(s: Settings) -> AsyncIterator[Any]:
    """The built-in exchange on SIM_HOST:SIM_PORT when KALSHI_ENV=sim and no explicit URLs are set, else nothing."""
    if s.kalshi_env is not KalshiEnv.SIM or s.kalshi_api_base or s.kalshi_ws_url:
        yield None
        return
    from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator

    async with run_simulator(SimulatorConfig(host=s.sim_host, port=s.sim_port)) as sim:
        yield sim


async def run_up(s: Settings, engine: Any, *, duration: float | None, metrics_port: int | None) -> None:
    """``up`` after the database: simulator (when KALSHI_ENV=sim), API and recorder until Ctrl-C or ``duration``."""
    stop = asyncio.Event()
    _install_stop(stop)
    from kalshi_analytics.api.app import serve_api

    async with simulator_for(s) as sim:
        if sim is not None:
            typer.echo(f"simulator:  {sim.base_url}  (admin {sim.admin_url}/state)")
        api = asyncio.create_task(serve_api(s, engine), name="api")
        typer.echo(f"api:        http://{s.api_host}:{s.api_port}/api/v1  (docs /docs, metrics /metrics)")
        try:
            await _run_recorder(
                s,
                engine,
                series=[],
                events=[],
                categories=[],
                status="open",
                metrics_port=metrics_port,
                duration=duration,
                stop=stop,
            )
        finally:
            api.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await api
    typer.echo("stopped")
