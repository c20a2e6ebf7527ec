"""A frozen leader cannot block the system: two real ``kalshi-analytics recorder`` processes, the leader stopped
with SIGSTOP. The standby takes over once the lease runs out (ending the frozen leader's session), data keeps
flowing, and the old leader, continued, writes nothing more: it finds itself deposed and stands by."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.simulator.server import Simulator, SimulatorConfig, run_simulator
from tests.conftest import wait_until

TAKEOVER_LIMIT_SECONDS = 15
# Rows the recorder counts as new in kalshi_recorder_rows_written_total and that carry our receipt time.
TIMED_TABLES = ("market_snapshots", "trades", "orderbook_snapshots")


class Recorder:
    """One ``kalshi-analytics recorder`` subprocess: its pid, metrics URL and log file."""

    def __init__(self, proc: asyncio.subprocess.Process, log: IO[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log = log
        self.log_path = log_path
        self.metrics_url = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def read_metrics_url(self) -> None:
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while not self.metrics_url:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError(f"recorder {self.pid} exited: {self.log_path.read_text()[-3000:]}")
                if m := re.search(r"metrics:\s+(http://\S+/metrics)", line):
                    self.metrics_url = m.group(1)

    async def metric(self, name: str, **labels: str) -> float:
        async with httpx.AsyncClient(timeout=10) as http:
            body = (await http.get(self.metrics_url)).text
        total = 0.0
        for line in body.splitlines():
            if not line.startswith(name):
                continue
            sample, value = line.rsplit(" ", 1)
            if sample == name or (
                sample.startswith(name + "{") and all(f'{k}="{v}"' in sample for k, v in labels.items())
            ):
                total += float(value)
        return total

    async def rows_written(self) -> float:
        return sum([await self.metric("kalshi_recorder_rows_written_total", table=t) for t in TIMED_TABLES])


@contextlib.asynccontextmanager
async def recorders(sim: Simulator, db_url: str, tmp: Path) -> AsyncIterator[list[Recorder]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_", "POLL_"))}
    env.update(
        {
            "DB_URL": db_url,
            "KALSHI_API_BASE": sim.base_url,
            "KALSHI_WS_URL": sim.ws_url,
            "KALSHI_RATE_LIMIT_RPS": "2000",
            "POLL_INTERVAL_SECONDS": "1",
        }
    )
    started: list[Recorder] = []
    try:

        async def start(name: str) -> Recorder:
            data = tmp / name
            data.mkdir()
            log_path = tmp / f"{name}.log"
            log = log_path.open("wb")
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "kalshi_analytics",
                "recorder",
                "--metrics-port",
                "0",
                env={**env, "KALSHI_ANALYTICS_DATA_DIR": str(data)},
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
            rec = Recorder(proc, log, log_path)
            started.append(rec)
            await rec.read_metrics_url()
            return rec

        yield [await start("a"), await start("b")]
    finally:
        for rec in started:  # only the processes this test started, by pid
            if rec.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rec.pid, signal.SIGCONT)
                    rec.proc.terminate()
                try:
                    await asyncio.wait_for(rec.proc.wait(), 30)
                except TimeoutError:
                    rec.proc.kill()
                    await rec.proc.wait()
            rec.log.close()


async def _scalar(engine: AsyncEngine, sql: str, **params: object) -> object:
    async with engine.connect() as c:
        return (await c.execute(text(sql), params)).scalar()


async def _role(engine: AsyncEngine, pid: int) -> object:
    return await _scalar(engine, "SELECT role FROM recorder_heartbeats WHERE pid = :p", p=pid)


async def _rows_received_before(engine: AsyncEngine, t: float) -> int:
    union = " UNION ALL ".join(
        f"SELECT count(*) AS n FROM {tbl} WHERE received_at < to_timestamp(:t)" for tbl in TIMED_TABLES
    )
    n = await _scalar(engine, f"SELECT sum(n) FROM ({union}) AS counts", t=t)
    return int(str(n))


@pytest.mark.timeout(180)
async def test_a_frozen_leader_is_deposed_within_15_s_and_writes_nothing_when_it_wakes(
    recorder_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(recorder_db_url)
    sim_cfg = SimulatorConfig(seed=21, markets=8, speed=10, port=0, rate_limit=None)
    try:
        async with run_simulator(sim_cfg) as sim, recorders(sim, recorder_db_url, tmp_path) as (a, b):

            async def leads(rec: Recorder) -> bool:
                return await _role(engine, rec.pid) == "leader"

            async def stands_by(rec: Recorder) -> bool:
                return await _role(engine, rec.pid) == "standby"

            # Whichever got the lock first is "old"; the other must stand by.
            async def one_leads() -> bool:
                return await leads(a) or await leads(b)

            await wait_until(one_leads, "one recorder to lead", seconds=60, interval=0.25)
            old, new = (a, b) if await leads(a) else (b, a)
            await wait_until(lambda: stands_by(new), "the other to stand by", seconds=30, interval=0.25)
            await wait_until(
                lambda: _rows_grow(engine, time.time()), "the leader to record rows", seconds=30, interval=0.25
            )

            os.kill(old.pid, signal.SIGSTOP)
            stopped_at = time.time()
            frozen = time.monotonic()
            await wait_until(
                lambda: leads(new), "the standby to take over", seconds=TAKEOVER_LIMIT_SECONDS + 5, interval=0.1
            )
            took = time.monotonic() - frozen
            await wait_until(
                lambda: _rows_grow(engine, time.time()), "the new leader to record rows", seconds=30, interval=0.25
            )
            # Everything the old leader committed, it received before it froze; count it while it is frozen.
            old_rows_frozen = await _rows_received_before(engine, stopped_at)
            old_role_while_frozen = await _role(engine, old.pid)
            holder = await _scalar(engine, "SELECT holder FROM recorder_lease")

            os.kill(old.pid, signal.SIGCONT)
            await wait_until(lambda: stands_by(old), "the old leader to stand by", seconds=30, interval=0.25)
            await asyncio.sleep(3)  # a while in which a late batch would land: there must be none
            old_rows_after = await _rows_received_before(engine, stopped_at)
            old_written = await old.rows_written()
            old_fenced = await old.metric("kalshi_recorder_fenced_batches_total")
            old_discarded = await old.metric("kalshi_recorder_rows_discarded_total")
            old_leader_gauge = await old.metric("kalshi_recorder_leader")
            new_takeovers = await new.metric("kalshi_recorder_takeovers_total")
            new_leads = await leads(new)
    finally:
        await engine.dispose()

    old_log = old.log_path.read_text()
    assert took < TAKEOVER_LIMIT_SECONDS, f"takeover took {took:.1f} s"
    print(f"takeover after SIGSTOP: {took:.1f} s; old leader: {old_fenced:g} batches fenced, {old_discarded:g} dropped")
    assert old_fenced + old_discarded > 0, "what the old leader held when it woke was refused or discarded, counted"
    assert old_role_while_frozen == "deposed", "the new leader marks the frozen leader's heartbeat"
    assert isinstance(holder, str)
    assert str(new.pid) in holder
    assert new_takeovers == 1
    assert new_leads
    assert old_leader_gauge == 0
    assert old_rows_after == old_rows_frozen, "no late batch of the old leader landed"
    assert old_written == old_rows_frozen, "the old leader committed nothing it received after it woke"
    assert "recorder_leadership_lost" in old_log
    assert "recorder_back_to_standby" in old_log


async def _rows_grow(engine: AsyncEngine, since: float) -> bool:
    n = await _scalar(engine, "SELECT count(*) FROM market_snapshots WHERE received_at > to_timestamp(:t)", t=since - 2)
    return bool(n)
