"""Shared benchmark plumbing: a fresh, migrated database on the embedded server or BENCH_DATABASE_URL, a free
loopback port, and the simulator in its own process."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy import make_url, text

from kalshi_analytics.db import migrations
from kalshi_analytics.db.embedded import start_embedded
from kalshi_analytics.db.engine import create_engine


def server_url() -> str:
    """BENCH_DATABASE_URL if set, else an embedded server in a temporary directory."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return url
    pgdata = Path(tempfile.gettempdir()) / "kalshi-analytics-bench-pgdata"
    return start_embedded(pgdata, database="postgres").url


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    server = server_url()
    name = f"ka_bench_{uuid.uuid4().hex[:10]}"
    url = await _create_migrated(server, name)
    try:
        yield url
    finally:
        admin = create_engine(server, pool_size=1)
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def kept_database(name: str) -> tuple[str, bool]:
    """``(url, created)``: the database ``name`` on the bench server, created and migrated if missing, and
    never dropped — so a slow bulk load can be reused by later runs (``--keep-database``)."""
    server = server_url()
    admin = create_engine(server, pool_size=1)
    async with admin.connect() as conn:
        exists = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).first()
    await admin.dispose()
    if exists:
        return make_url(server).set(database=name).render_as_string(hide_password=False), False
    return await _create_migrated(server, name), True


async def _create_migrated(server: str, name: str) -> str:
    admin = create_engine(server, pool_size=1)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, pool_size=1)
    await migrations.upgrade(engine)
    await engine.dispose()
    return url


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def simulator_args(ap: argparse.ArgumentParser, seconds: float = 5.0) -> None:
    """The options every simulator-driven benchmark takes."""
    ap.add_argument("--seconds", type=float, default=seconds)
    ap.add_argument("--markets", type=int, default=300)
    ap.add_argument("--speed", type=float, default=600.0)
    ap.add_argument("--activity", type=float, default=4.0)


@contextmanager
def simulator_process(markets: int, speed: float, activity: float, *, realtime: bool = False) -> Iterator[int]:
    """The simulator in its own process (as ``kalshi-analytics simulate`` runs), on a free loopback port, rate
    limit off; yields the port and stops the process on exit. ``realtime``: its clock is the wall clock."""
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve_simulator, args=(port, markets, speed, activity, realtime), daemon=True
    )
    proc.start()
    try:
        yield port
    finally:
        proc.terminate()
        proc.join(5)


def _serve_simulator(port: int, markets: int, speed: float, activity: float, realtime: bool) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    from kalshi_analytics.logs import configure_logging
    from kalshi_analytics.simulator import SimulatorConfig, run_simulator

    configure_logging("WARNING")

    async def main() -> None:
        start_ts = time.time() if realtime else None
        cfg = SimulatorConfig(
            port=port, seed=42, markets=markets, speed=speed, activity=activity, rate_limit=None, start_ts=start_ts
        )
        async with run_simulator(cfg):
            await asyncio.Event().wait()

    asyncio.run(main())
