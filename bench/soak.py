"""Soak: the recorder through every failure at once, checked against the simulator's own record.

    python -m bench.soak --seconds 600        # the figures in bench/README.md
    (tests/recorder/test_soak.py runs the same scenario for 300 s in CI)

Real processes only: a private embedded PostgreSQL (this script stops and restarts it), ``kalshi-analytics
simulate`` with 5 % of WebSocket frames dropped, periodic disconnects and stale REST answers, and two
``kalshi-analytics recorder`` processes (a leader and a standby). Over the run, at fixed fractions of it:
the leader is killed with SIGKILL (the standby takes over; a new standby starts), PostgreSQL restarts (15 s
away), the leader is frozen with SIGSTOP for 25 s and woken, and every recorder is stopped while markets settle.
Then the simulator's clock is paused, the recorders catch up, and everything stored is compared with the
simulator: every trade, every final state and result, every gap closed, every market's series consistent
(volume never falls, a status never goes back). Loopback only; every process is ours and stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import free_port
from kalshi_analytics.db import migrations
from kalshi_analytics.db.embedded import start_embedded, stop_embedded
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.kalshi.status import status_rank

CLI = [sys.executable, "-m", "kalshi_analytics"]


@dataclass
class Figures:
    seconds: float
    messages: int = 0
    dropped: int = 0
    trades_generated: int = 0
    trades_expected: int = 0
    trades_missing: int = 0
    results_expected: int = 0
    results_missing: int = 0
    gaps: int = 0
    gaps_open: int = 0
    gaps_unrepairable: int = 0
    max_repair_seconds: float = 0.0
    takeover_after_kill_seconds: float | None = None
    takeover_after_stop_seconds: float | None = None
    outage_seconds: float = 0.0
    consistency_violations: list[str] = field(default_factory=list)
    buffer_peak: float | None = None

    def failures(self) -> list[str]:
        out = []
        if self.trades_missing:
            out.append(f"{self.trades_missing} of {self.trades_expected} trades missing")
        if self.results_missing:
            out.append(f"{self.results_missing} of {self.results_expected} results missing")
        if self.gaps_open:
            out.append(f"{self.gaps_open} gaps open")
        if self.consistency_violations:
            out.append(f"{len(self.consistency_violations)} consistency violations: {self.consistency_violations[:5]}")
        if self.takeover_after_stop_seconds is None or self.takeover_after_stop_seconds > 15:
            out.append(f"takeover after SIGSTOP took {self.takeover_after_stop_seconds} s (limit 15)")
        return out


class Stack:
    """The processes of one soak run, all started (and stopped) by this object."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.db_url = ""
        self.sim_port = free_port()
        self.sim: subprocess.Popen[bytes] | None = None
        self.recorders: list[subprocess.Popen[bytes]] = []

    @property
    def sim_base(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_"))}
        env.update(
            DB_URL=self.db_url,
            KALSHI_API_BASE=f"{self.sim_base}/trade-api/v2",
            KALSHI_WS_URL=f"ws://127.0.0.1:{self.sim_port}/trade-api/ws/v2",
            KALSHI_RATE_LIMIT_RPS="500",
            KALSHI_ANALYTICS_DATA_DIR=str(self.root / "data"),
            LOG_FORMAT="json",
            POLL_INTERVAL_SECONDS="2",
        )
        return env

    async def start_database(self) -> None:
        emb = await asyncio.to_thread(start_embedded, self.pgdata, "kalshi")
        self.db_url = emb.url
        engine = create_engine(self.db_url, pool_size=1)
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()

    def start_simulator(self, markets: int) -> None:
        args = [
            *CLI, "simulate", "--port", str(self.sim_port), "--seed", "7", "--markets", str(markets),
            "--rate-limit", "0", "--drop-fraction", "0.05", "--disconnect-every", "45",
        ]  # fmt: skip
        log = (self.root / "simulator.log").open("wb")
        self.sim = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env())

    def start_recorder(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"recorder-{name}.log").open("wb")
        proc = subprocess.Popen(
            [*CLI, "recorder", "--metrics-port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        self.recorders.append(proc)
        return proc

    def stop(self) -> None:
        for proc in [*self.recorders, *([self.sim] if self.sim else [])]:
            if proc.poll() is None:
                with contextlib.suppress(Exception):
                    os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in [*self.recorders, *([self.sim] if self.sim else [])]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.pgdata.exists():
            stop_embedded(self.pgdata)


async def _wait(what: str, condition: Callable[[], Awaitable[bool]], seconds: float, every: float = 0.2) -> float:
    """Seconds until ``condition()`` held; raises naming ``what`` after ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        with contextlib.suppress(Exception):
            if await condition():
                return time.monotonic() - started
        await asyncio.sleep(every)
    raise TimeoutError(f"{what}: not within {seconds:.0f} s")


async def leader_pid(engine: AsyncEngine) -> int | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT pid FROM recorder_heartbeats WHERE role = 'leader' "
                    "AND heartbeat_at > now() - interval '5 seconds' ORDER BY heartbeat_at DESC LIMIT 1"
                )
            )
        ).first()
    return None if row is None else int(row[0])


async def _new_leader(engine: AsyncEngine, old: int) -> bool:
    pid = await leader_pid(engine)
    return pid is not None and pid != old


async def run_soak(seconds: float, root: Path, markets: int = 20) -> Figures:
    """The whole scenario; returns its figures (the caller decides what fails)."""
    figures = Figures(seconds=seconds)
    stack = Stack(root)
    engine: AsyncEngine | None = None
    try:
        await stack.start_database()
        engine = create_engine(stack.db_url, pool_size=2)
        stack.start_simulator(markets)
        async with httpx.AsyncClient(base_url=stack.sim_base, timeout=10) as sim:
            await _wait("simulator up", lambda: _ok(sim.get("/_sim/state")), 60)
            await sim.post("/_sim/faults", json={"rest_stale_seconds": 5})  # answers as stale as the CDN's
            stack.start_recorder("a")
            await _wait("a leader", lambda: _has_leader(engine), 90)
            stack.start_recorder("b")
            started = time.monotonic()

            async def until(fraction: float) -> None:
                await asyncio.sleep(max(0.0, started + fraction * seconds - time.monotonic()))

            # 1. kill -9 the leader: the standby takes over; a new standby joins.
            await until(0.15)
            old = await leader_pid(engine)
            assert old is not None
            os.kill(old, signal.SIGKILL)
            figures.takeover_after_kill_seconds = await _wait(
                "takeover after kill", lambda: _new_leader(engine, old), 60
            )
            stack.start_recorder("c")

            # 2. PostgreSQL away for 15 s.
            await until(0.35)
            await engine.dispose()
            outage = time.monotonic()
            await asyncio.to_thread(stop_embedded, stack.pgdata)
            await asyncio.sleep(15)
            await asyncio.to_thread(start_embedded, stack.pgdata, "kalshi")
            figures.outage_seconds = time.monotonic() - outage
            await _wait("a leader after the outage", lambda: _has_leader(engine), 90)

            # 3. the leader frozen for 25 s, then woken: it must not write again as leader.
            await until(0.55)
            frozen = await leader_pid(engine)
            assert frozen is not None
            os.kill(frozen, signal.SIGSTOP)
            frozen_at = time.monotonic()
            try:
                with contextlib.suppress(TimeoutError):  # no takeover is a figure (None), reported as a failure
                    figures.takeover_after_stop_seconds = await _wait(
                        "takeover after SIGSTOP", lambda: _new_leader(engine, frozen), 25
                    )
                await asyncio.sleep(max(0.0, 25 - (time.monotonic() - frozen_at)))
            finally:
                os.kill(frozen, signal.SIGCONT)

            # 4. nobody records while markets trade and settle.
            await until(0.75)
            for proc in stack.recorders:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            for proc in stack.recorders:
                proc.wait(60)
            state = (await sim.get("/trade-api/v2/markets", params={"status": "open", "limit": 1000})).json()
            for m in state["markets"][:3]:
                await sim.post(f"/_sim/settle/{m['ticker']}", params={"result": "yes", "finalize": "true"})
            await asyncio.sleep(min(20.0, 0.1 * seconds))
            stack.start_recorder("d")
            stack.start_recorder("e")

            # 5. the end: the exchange stops; the recorders catch up; compare.
            await until(0.95)
            await sim.post("/_sim/clock", params={"paused": "true"})
            await sim.post("/_sim/faults/reset")
            await _wait("a leader at the end", lambda: _has_leader(engine), 90)
            await _settled(engine, sim, figures)
            await _collect(engine, sim, stack, figures)
    finally:
        if engine is not None:
            await engine.dispose()
        stack.stop()
    return figures


async def _ok(request: Awaitable[httpx.Response]) -> bool:
    return (await request).status_code == 200


async def _has_leader(engine: AsyncEngine) -> bool:
    return await leader_pid(engine) is not None


async def _missing_trades(engine: AsyncEngine, sim: httpx.AsyncClient) -> tuple[int, int, int]:
    generated = (await sim.get("/_sim/trades", params={"limit": 1_000_000})).json()
    async with engine.connect() as conn:
        stored = {r[0] for r in await conn.execute(text("SELECT trade_id FROM trades"))}
        recorded = {r[0] for r in await conn.execute(text("SELECT ticker FROM markets"))}
    expected = [t for t in generated["trades"] if t["ticker"] in recorded]
    missing = sum(1 for t in expected if t["trade_id"] not in stored)
    return int(generated["trades_generated"]), len(expected), missing


async def _open_gaps(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM feed_gaps WHERE repaired_at IS NULL AND unrepairable_reason IS NULL")
                )
            ).scalar_one()
        )


async def _settled(engine: AsyncEngine, sim: httpx.AsyncClient, figures: Figures) -> None:
    """Wait (bounded) until the recorders have caught up: every trade stored and no gap open."""

    async def caught_up() -> bool:
        _, _, missing = await _missing_trades(engine, sim)
        return missing == 0 and await _open_gaps(engine) == 0

    with contextlib.suppress(Exception):
        await _wait("recorders caught up", caught_up, 180, every=2.0)


async def _collect(engine: AsyncEngine, sim: httpx.AsyncClient, stack: Stack, figures: Figures) -> None:
    figures.trades_generated, figures.trades_expected, figures.trades_missing = await _missing_trades(engine, sim)
    log = (await sim.get("/_sim/log", params={"limit": 1})).json()
    figures.messages = int(log["total"])
    dropped = (await sim.get("/_sim/log", params={"dropped": "true", "limit": 1_000_000})).json()
    figures.dropped = len(dropped["entries"])
    exchange: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = (await sim.get("/trade-api/v2/markets", params=params)).json()
        exchange.update({m["ticker"]: m for m in page["markets"]})
        cursor = page.get("cursor")
        if not cursor:
            break
    async with engine.connect() as conn:
        stored = {r[0]: (r[1], r[2]) for r in await conn.execute(text("SELECT ticker, status, result FROM markets"))}
        gaps = (
            await conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE repaired_at IS NULL AND unrepairable_reason IS NULL), "
                    "count(*) FILTER (WHERE unrepairable_reason IS NOT NULL), "
                    "coalesce(max(extract(epoch FROM repaired_at - detected_at)), 0) FROM feed_gaps"
                )
            )
        ).one()
        series = await conn.execute(
            text("SELECT ticker, ts, source, volume, status FROM market_snapshots ORDER BY ticker, ts, received_at")
        )
        last: dict[str, tuple[Any, Any, Any]] = {}
        for ticker, ts, source, volume, status in series:
            prev = last.get(ticker)
            if prev is not None:
                if volume is not None and prev[1] is not None and volume < prev[1]:
                    figures.consistency_violations.append(f"{ticker} volume {prev[1]}→{volume} at {ts} ({source})")
                rank, before = status_rank(status), status_rank(prev[2])
                if rank is not None and before is not None and rank < before:
                    figures.consistency_violations.append(f"{ticker} status {prev[2]}→{status} at {ts} ({source})")
            last[ticker] = (
                ts,
                volume if volume is not None else (prev[1] if prev else None),
                status or (prev[2] if prev else None),
            )
    figures.gaps, figures.gaps_open, figures.gaps_unrepairable = int(gaps[0]), int(gaps[1]), int(gaps[2])
    figures.max_repair_seconds = float(gaps[3])
    settled = {t: m for t, m in exchange.items() if m.get("status") in ("determined", "finalized") and t in stored}
    figures.results_expected = len(settled)
    figures.results_missing = sum(1 for t, m in settled.items() if stored[t][1] != m.get("result"))
    figures.buffer_peak = _buffer_peak(stack.root)


def _buffer_peak(root: Path) -> float | None:
    """The most rows a recorder held unwritten through a database outage (its ``sink_database_back`` line)."""
    peak = None
    for path in root.glob("recorder-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if "sink_database_back" not in line:
                continue
            with contextlib.suppress(ValueError):
                held = json.loads(line).get("held_peak")
                if isinstance(held, int | float):
                    peak = max(peak or 0.0, float(held))
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--markets", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the run's folder (logs) afterwards")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ka-soak-"))
    root.chmod(0o755)  # the embedded server runs as its own user and must enter it
    try:
        figures = asyncio.run(run_soak(args.seconds, root, args.markets))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures.__dict__, indent=2, default=str))
    failures = figures.failures()
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
