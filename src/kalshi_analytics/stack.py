"""``up``: everything for one person on one machine — database, simulator, recorder and API in one process.

The only module that knows every process; the features know nothing of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import typer

from kalshi_analytics.clihelp import run, settings
from kalshi_analytics.config import KalshiEnv, Settings
from kalshi_analytics.db.connect import open_database
from kalshi_analytics.db.status import database_status
from kalshi_analytics.recorder.cli import install_stop, run_recorder


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
    install_stop(stop)
    from kalshi_analytics.api.app import serve_api

    async with simulator_for(s) as sim:
        if sim is not None:
            typer.echo(f"simulator:  {sim.base_url}  (admin {sim.admin_url}/state)")
        api = asyncio.create_task(serve_api(s, engine), name="api")
        typer.echo(f"api:        http://{s.api_host}:{s.api_port}/api/v1  (docs /docs, metrics /metrics)")
        try:
            await run_recorder(
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


def up(
    check: Annotated[
        bool, typer.Option("--check", help="Only prepare the database (start, migrate), print its status, exit.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Recorder metrics port (0 = any free port).")
    ] = 9464,
) -> None:
    """Run everything for one person on one machine: database (embedded unless DB_URL), simulator, recorder."""
    s = settings()

    async def go() -> None:
        choice, engine = await open_database(s, upgrade=True)
        try:
            if choice.embedded:
                verb = "created" if choice.created else "reused"
                typer.echo(f"embedded PostgreSQL {verb} in {s.embedded_pgdata}")
            for line in (await database_status(engine, choice)).lines():
                typer.echo(line)
            if not check:
                await run_up(s, engine, duration=duration, metrics_port=metrics_port)
        finally:
            await engine.dispose()

    run(go)
