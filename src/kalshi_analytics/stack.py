"""``up``: everything for one person on one machine — database, simulator, recorder, live runner and API in one
process.

The only module that knows every process; the features know nothing of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer

from kalshi_analytics.clihelp import run, settings
from kalshi_analytics.config import KalshiEnv, Settings
from kalshi_analytics.db.connect import open_database
from kalshi_analytics.db.embedded import stop_embedded
from kalshi_analytics.db.status import database_status
from kalshi_analytics.errors import UnavailableError
from kalshi_analytics.kalshi.credentials import load_signer
from kalshi_analytics.recorder.cli import install_stop, run_recorder
from kalshi_analytics.web.server import ensure_port_free


def uses_simulator(s: Settings) -> bool:
    return s.kalshi_env is KalshiEnv.SIM and not s.kalshi_api_base and not s.kalshi_ws_url


@contextlib.asynccontextmanager
async def simulator_for(s: Settings) -> AsyncIterator[Any]:
    """The built-in exchange on SIM_HOST:SIM_PORT when KALSHI_ENV=sim and no explicit URLs are set, else nothing."""
    if not uses_simulator(s):
        yield None
        return
    from kalshi_analytics.simulator.server import SimulatorConfig, run_simulator

    # A configured key is accepted by the built-in exchange too, so the signed path is the one exercised.
    keys: dict[str, str | Path] = {}
    if load_signer(s) is not None and s.kalshi_api_key_id and s.kalshi_private_key_path:
        keys[s.kalshi_api_key_id] = s.kalshi_private_key_path
    config = SimulatorConfig(host=s.sim_host, port=s.sim_port, seed=s.sim_seed, markets=s.sim_markets, public_keys=keys)
    async with run_simulator(config) as sim:
        yield sim


def dashboard_line(s: Settings, url: str) -> str:
    """Where the dashboard is, or how to get it (`make run` builds it when Node.js is installed)."""
    from kalshi_analytics.api.dashboard import dashboard_dir

    if dashboard_dir(s) is not None:
        return f"dashboard:  {url}"
    if not s.api_dashboard:
        return "dashboard:  off (API_DASHBOARD=false)"
    return "dashboard:  not built: `make run` builds it when Node.js 20+ is installed (see README, Dashboard)"


async def run_up(s: Settings, engine: Any, *, duration: float | None, metrics_port: int | None) -> None:
    """``up`` after the database: simulator (when KALSHI_ENV=sim), API and recorder until Ctrl-C or ``duration``."""
    from kalshi_analytics.api.app import serve_api
    from kalshi_analytics.api.root import public_urls
    from kalshi_analytics.live.runner import LiveRunner

    if uses_simulator(s):
        ensure_port_free(s.sim_host, s.sim_port, "simulator", "SIM_PORT")
    ensure_port_free(s.api_host, s.api_port, "API", "API_PORT")
    stop = asyncio.Event()
    install_stop(stop)
    async with simulator_for(s) as sim:
        if sim is not None:
            typer.echo(f"simulator:  {sim.base_url}  (admin {sim.admin_url}/state)")
        api = asyncio.create_task(serve_api(s, engine), name="api")
        api.add_done_callback(lambda _: stop.set())  # an API that dies takes the stack down with it
        urls = public_urls(s.api_host, s.api_port)
        typer.echo(f"api:        {urls['api']}  (its metrics {urls['metrics']})")
        typer.echo(f"docs:       {urls['docs']}  (ReDoc {urls['redoc']})")
        typer.echo(dashboard_line(s, urls["api"].removesuffix("/api/v1") + "/"))
        runner = LiveRunner(engine)
        live = asyncio.create_task(runner.run(stop), name="live-runner")
        typer.echo(
            "live:       paper-trading runner on (sessions: the dashboard's Paper trading page, "
            "or `kalshi-analytics live start`)"
        )
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
            stop.set()
            try:
                await asyncio.wait_for(live, 10)
            except (TimeoutError, asyncio.CancelledError):
                live.cancel()
            api.cancel()
            try:
                await api
            except asyncio.CancelledError:
                pass
            except (Exception, SystemExit) as exc:  # uvicorn exits the task on a failed start-up
                raise UnavailableError(f"the API stopped: {exc or type(exc).__name__} (see the log above)") from None
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
    """Run everything on one machine: database (embedded unless DB_URL), simulator (KALSHI_ENV=sim), recorder, live
    runner, API."""
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
            if choice.started and not check:
                # Started by this `up`, so stopped with it; a server that was running before is left running.
                await asyncio.to_thread(stop_embedded, s.embedded_pgdata)
                typer.echo("embedded PostgreSQL stopped")

    run(go)
