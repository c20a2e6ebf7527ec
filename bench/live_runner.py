"""The live runner (paper trading, issue 14): recorder commit → paper fill committed, and sustained events/s.

    python -m bench.live_runner [--markets 200] [--interval 0.2] [--seconds 60] [--sessions 10] [--per-session 40]
                                [--every 3] [--runner process|task] [--steps 1000] [--profile]
                                [--skip-latency] [--skip-throughput]

Snapshots reach PostgreSQL through the recorder's own :class:`~kalshi_analytics.recorder.sink.Sink` (COPY, the
1-minute candles, the event journal row in ``stream_batches`` and the commit notification, one unit of work per
batch, the recorder's batch bound of 0.1 s). Each session runs ``bench_every_few`` (registered here: the pattern
of the tests' ``test_every_few``; buys 2 YES on every ``--every``-th snapshot of a market while flat, sells two
snapshots later), over ``--per-session`` of the markets (session ``i`` takes a contiguous block starting at
``i × markets / sessions``, so with the defaults every market is held by two sessions).

1. Latency. ``--markets`` markets each change every ``--interval`` seconds for ``--seconds`` (200 × 5/s = 1,000
   snapshots/s), exchange time = wall time, as the recorder writes a live feed. The runner runs in its own
   process (``--runner process``, the default: ``python -m bench.live_runner --serve-runner URL``, the
   :class:`~kalshi_analytics.live.runner.LiveRunner` a user's ``kalshi-analytics live runner`` runs) or as a task
   of the writing process (``--runner task``). Per fill: ``paper_fills.committed_at`` − the ``committed_at`` of
   the ``stream_batches`` row that journaled the snapshot that caused it (``paper_fills.event_id``), both
   ``clock_timestamp()`` of the one server. A warm-up snapshot per market first, so the runner is leading and
   has taken every session before the measured window. Target p99 < 250 ms.
2. Throughput. A second database: the sessions are created first (the runner not running; each one's cursor is
   the journal head), then ``--steps`` snapshots of every market are written through the sink (data time as in
   the live phase, so it runs ahead of the wall clock), then a runner — in this process, the leader's own
   ``refresh_sessions`` + ``step`` timed directly — takes the sessions (never run: no rebuild) and applies the
   journal after their cursor until every session reaches the head. Journal events/s, and session
   applications/s (the runner's ``applied``: one per snapshot per session holding its market). Target
   ≥ 20,000/s. ``--profile`` prints a cProfile of that step.

Loopback only; every database made here is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import math
import os
import pstats
import random
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import fresh_database
from kalshi_analytics.backtests.data import MarketFilter
from kalshi_analytics.db.engine import create_engine, driver_in_transaction
from kalshi_analytics.live import service
from kalshi_analytics.live.runner import LiveRunner
from kalshi_analytics.live.schemas import PaperSessionCreate
from kalshi_analytics.recorder.rows import MarketRow, SnapshotRow
from kalshi_analytics.recorder.sink import Sink
from kalshi_analytics.strategies.base import MarketView, OrderIntent, Position, Strategy, StrategyParams
from kalshi_analytics.strategies.registry import register

PRICES = [Decimal(i) / 100 for i in range(101)]
SIZE = Decimal(100)
RECORDER_BATCH_SECONDS = 0.1  # the recorder's sink bound (recorder/service.py)


class EveryFewParams(StrategyParams):
    every: int = 3
    size: Decimal = Decimal(2)


@register
class BenchEveryFew(Strategy):
    """The tests' ``test_every_few``: buys YES on every ``every``-th snapshot of a market while flat, sells it all
    two snapshots later — trades often and deterministically."""

    name: ClassVar[str] = "bench_every_few"
    version: ClassVar[str] = "1"
    Params = EveryFewParams

    def on_event(self, view: MarketView, position: Position, params: EveryFewParams) -> Sequence[OrderIntent]:
        n = len(view)
        if position.yes > 0:
            if n % params.every == 2 % params.every:
                return [OrderIntent("yes", "sell", position.yes, reason={"n": n})]
            return []
        ask = view.last("yes_ask")
        if n % params.every == 0 and math.isfinite(ask) and ask < 0.97:
            return [OrderIntent("yes", "buy", params.size, reason={"n": n})]
        return []


# ------------------------------------------------------------------------------------------------------ data
def ticker_of(m: int) -> str:
    return f"KXLIVEB-{m:04d}"


def market_rows(markets: int, now: datetime) -> list[MarketRow]:
    return [
        MarketRow(
            ticker=ticker_of(m),
            event_ticker=f"KXLIVEBEV-{m // 10}",
            series_ticker="KXLIVEB",
            title=f"Live runner benchmark market {m}",
            category="Economics",
            status="active",
            open_time=now - timedelta(days=1),
            close_time=now + timedelta(days=30),
            volume=Decimal(0),
            open_interest=Decimal(1000),
        )
        for m in range(markets)
    ]


class Walk:
    """Each market's quote: a random walk of the YES bid on the cent grid (20–75 ¢), 2 ¢ spread, 100 a side."""

    def __init__(self, markets: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.bid = [self.rng.randrange(30, 65) for _ in range(markets)]
        self.n = [0] * markets

    def row(self, m: int, ts: datetime, received_at: datetime) -> SnapshotRow:
        b = min(75, max(20, self.bid[m] + self.rng.choice((-1, 0, 0, 1))))
        self.bid[m] = b
        self.n[m] += 1
        return SnapshotRow(
            ticker_of(m),
            ts,
            "websocket",
            received_at,
            self.n[m],
            PRICES[b],
            PRICES[b + 2],
            PRICES[98 - b],
            PRICES[100 - b],
            PRICES[b + 1],
            SIZE,
            SIZE,
            Decimal(self.n[m]),
            Decimal(1000),
            "active",
        )


def session_tickers(i: int, markets: int, sessions: int, per: int) -> list[str]:
    start = i * markets // sessions
    return [ticker_of((start + j) % markets) for j in range(min(per, markets))]


async def create_sessions(engine: AsyncEngine, a: argparse.Namespace) -> list[Any]:
    ids = []
    for i in range(a.sessions):
        body = PaperSessionCreate(
            strategy=BenchEveryFew.name,
            params={"every": a.every},
            market_filter=MarketFilter(tickers=session_tickers(i, a.markets, a.sessions, a.per_session)),
            name=f"bench {i}",
            initial_capital=Decimal(1_000_000),
        )
        ids.append(await service.create_session(engine, body))
    return ids


async def put_markets(engine: AsyncEngine, markets: int) -> None:
    async with Sink(engine, batch_max_seconds=RECORDER_BATCH_SECONDS) as sink:
        for row in market_rows(markets, datetime.now(UTC)):
            await sink.put(row)
        await sink.flush()


async def fetch(engine: AsyncEngine, sql: str, *args: Any) -> list[Any]:
    async with engine.connect() as conn:
        pg = await driver_in_transaction(conn)
        rows = list(await pg.fetch(sql, *args))
        await conn.rollback()
    return rows


async def progress(engine: AsyncEngine) -> tuple[int, int]:
    """(journal head, the lowest running session's high-water mark)."""
    r = (
        await fetch(
            engine,
            "SELECT (SELECT last_id FROM stream_head WHERE id = 1) AS head, "
            "(SELECT min(last_event_id) FROM paper_sessions WHERE status = 'running') AS low",
        )
    )[0]
    return int(r["head"]), int(r["low"] if r["low"] is not None else -1)


async def wait_caught_up(engine: AsyncEngine, head: int, limit_seconds: float) -> float:
    """Seconds until every running session's high-water mark reached ``head`` (raises after ``limit_seconds``)."""
    t0 = time.perf_counter()
    while True:
        _, low = await progress(engine)
        if low >= head:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > limit_seconds:
            raise TimeoutError(f"sessions at {low}, journal at {head} after {limit_seconds:.0f} s")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------- the runner
def serve_runner(url: str) -> None:
    """``--serve-runner URL``: a live runner process until SIGTERM (what ``kalshi-analytics live runner`` runs)."""
    from kalshi_analytics.logs import configure_logging

    configure_logging("WARNING")

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        engine = create_engine(url)
        try:
            await LiveRunner(engine).run(stop)
        finally:
            await engine.dispose()

    asyncio.run(main())


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of process ``pid`` (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# ----------------------------------------------------------------------------------------------- latency
async def latency(url: str, a: argparse.Namespace) -> None:
    engine = create_engine(url, pool_size=3)
    proc: asyncio.subprocess.Process | None = None
    stop = asyncio.Event()
    task: asyncio.Task[None] | None = None
    walk = Walk(a.markets)
    try:
        await put_markets(engine, a.markets)
        await create_sessions(engine, a)
        if a.runner == "process":
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.live_runner", "--serve-runner", url
            )
        else:
            task = asyncio.create_task(LiveRunner(engine).run(stop))
        async with Sink(engine, batch_max_seconds=RECORDER_BATCH_SECONDS) as sink:
            # Warm-up: one snapshot per market, and the runner has taken every session and applied them.
            now = datetime.now(UTC)
            for m in range(a.markets):
                await sink.put(walk.row(m, now + timedelta(microseconds=m), now))
            await sink.flush()
            head, _ = await progress(engine)
            took = await wait_caught_up(engine, head, 60)
            print(f"  runner ({a.runner}) leading with {a.sessions} sessions, warm-up applied {took:.1f} s", flush=True)
            rate = a.markets / a.interval
            written, begun = 0, time.perf_counter()
            warm = int(rate * a.warmup)
            total = warm + int(rate * a.seconds)
            warm_head: int | None = None
            cpu0: float | None = None
            started = begun
            while written < total:
                if warm_head is None and written >= warm:  # the measured window starts
                    warm_head, _ = await progress(engine)
                    cpu0 = cpu_seconds(proc.pid) if proc is not None else None
                    started = time.perf_counter()
                due = min(total, int((time.perf_counter() - begun) * rate))
                while written < due:
                    now = datetime.now(UTC)
                    row = walk.row(written % a.markets, now, now)
                    if not sink.put_nowait(row):
                        await sink.put(row)
                    written += 1
                await asyncio.sleep(0.005)
            await sink.flush()
            elapsed = time.perf_counter() - started
            written -= warm
            batches = sink.stats.batches
        head, _ = await progress(engine)
        tail = await wait_caught_up(engine, head, 120)
        cpu1 = cpu_seconds(proc.pid) if proc is not None else None
        rows = await fetch(
            engine,
            "SELECT extract(epoch FROM f.committed_at - b.committed_at)::float8 AS lag, "
            "extract(epoch FROM b.committed_at)::float8 AS at FROM paper_fills f "
            "CROSS JOIN LATERAL (SELECT committed_at FROM stream_batches b WHERE b.last_id >= f.event_id "
            "ORDER BY b.last_id LIMIT 1) b WHERE f.event_id > $1",
            warm_head,
        )
        lags = np.array([r["lag"] for r in rows]) * 1000
        print(
            f"  wrote {written:,} snapshots in {elapsed:.1f} s = {written / elapsed:,.0f}/s through the sink "
            f"({batches:,} batches); runner caught up {tail:.2f} s after the last commit",
            flush=True,
        )
        if cpu0 is not None and cpu1 is not None:
            print(f"  runner process CPU: {(cpu1 - cpu0) / (elapsed + tail):.0%} of one core", flush=True)
        if len(lags):
            p50, p95, p99 = np.percentile(lags, [50, 95, 99])
            verdict = "met" if p99 < 250 else "NOT met"
            print(
                f"latency commit → fill committed, {len(lags):,} fills ({len(lags) / elapsed:,.0f}/s): "
                f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {lags.max():.0f} ms "
                f"(target p99 < 250 ms: {verdict})",
                flush=True,
            )
            # Where the tail is: the seconds (by the snapshot's commit) whose worst fill was the slowest.
            at = np.array([r["at"] for r in rows])
            second = np.floor(at - at.min()).astype(int)
            worst = sorted(
                ((float(lags[second == t].max()), int(t), int((second == t).sum())) for t in np.unique(second)),
                reverse=True,
            )[:5]
            print(f"  ({load()})")
            print(
                "  slowest seconds (max ms, second, fills): " + ", ".join(f"{w:.0f} @{t}s ({n})" for w, t, n in worst)
            )
        else:
            print("latency: no fills")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if task is not None:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        await engine.dispose()


# -------------------------------------------------------------------------------------------- throughput
async def throughput(url: str, a: argparse.Namespace) -> None:
    engine = create_engine(url, pool_size=3)
    walk = Walk(a.markets)
    try:
        await put_markets(engine, a.markets)
        await create_sessions(engine, a)
        head0, _ = await progress(engine)
        t0 = datetime.now(UTC) + timedelta(milliseconds=10)
        started = time.perf_counter()
        async with Sink(engine, batch_max_seconds=RECORDER_BATCH_SECONDS) as sink:
            for s in range(a.steps):
                for m in range(a.markets):
                    ts = t0 + timedelta(seconds=s * a.interval, microseconds=m)
                    row = walk.row(m, ts, ts)
                    if not sink.put_nowait(row):
                        await sink.put(row)
            await sink.flush()
        written = a.steps * a.markets
        print(
            f"  wrote {written:,} snapshots through the sink in {time.perf_counter() - started:.1f} s (runner stopped)",
            flush=True,
        )
        head, _ = await progress(engine)
        runner = LiveRunner(engine)
        async with runner.election, runner.election.leadership():
            t_take = time.perf_counter()
            await runner.refresh_sessions()
            t_step = time.perf_counter()
            prof = cProfile.Profile() if a.profile else None
            if prof is not None:
                prof.enable()
            read = 0
            while min(s.cursor for s in runner.sessions.values()) < head:
                read += await runner.step()
            if prof is not None:
                prof.disable()
            done = time.perf_counter()
        _, low = await progress(engine)
        assert low >= head, (low, head)
        secs = done - t_step
        print(
            f"  took {len(runner.sessions)} sessions in {t_step - t_take:.2f} s; applied the journal "
            f"({head - head0:,} events after their cursors) in {secs:.2f} s, {runner.commits} commits, "
            f"{runner.fills:,} fills",
            flush=True,
        )
        print(
            f"throughput: {read / secs:,.0f} journal events/s ({read:,} read), "
            f"{runner.applied / secs:,.0f} session applications/s ({runner.applied:,}) "
            f"(target ≥ 20,000/s: {'met' if runner.applied / secs >= 20_000 else 'NOT met'}; {load()})",
            flush=True,
        )
        if prof is not None:
            for key in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(key).print_stats(a.profile_lines)
                print(out.getvalue())
    finally:
        await engine.dispose()


def load() -> str:
    """The machine's load average (1, 5, 15 min): the figures are only as quiet as the machine was."""
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


async def main(a: argparse.Namespace) -> None:
    from kalshi_analytics.logs import configure_logging

    configure_logging("WARNING")
    per_market = a.sessions * min(a.per_session, a.markets) / a.markets
    print(
        f"{a.markets} markets, {a.sessions} sessions × {min(a.per_session, a.markets)} markets "
        f"({per_market:g} sessions per market), bench_every_few every={a.every}",
        flush=True,
    )
    if not a.skip_latency:
        print(
            f"latency: {a.markets / a.interval:,.0f} snapshots/s, {a.warmup:g} s warm-up then {a.seconds:g} s "
            f"measured ({load()})",
            flush=True,
        )
        async with fresh_database() as url:
            await latency(url, a)
    if not a.skip_throughput:
        print(f"throughput: {a.steps * a.markets:,} snapshots written first, then the runner ({load()})", flush=True)
        async with fresh_database() as url:
            await throughput(url, a)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-runner":
        serve_runner(sys.argv[2])
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.2, help="seconds between two snapshots of one market")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the latency phase's measured window")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds at full rate before it (not counted)")
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--per-session", type=int, default=40, help="markets per session")
    ap.add_argument("--every", type=int, default=3, help="the strategy's period (a round trip per period)")
    ap.add_argument("--runner", choices=("process", "task"), default="process", help="latency phase's runner")
    ap.add_argument("--steps", type=int, default=1000, help="throughput phase: snapshots per market")
    ap.add_argument("--profile", action="store_true", help="cProfile the throughput phase's runner")
    ap.add_argument("--profile-lines", type=int, default=30)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if args.seconds > 600 or args.steps * args.markets > 5_000_000:
        ap.error("bounded: at most 600 s and 5 M snapshots")
    asyncio.run(main(args))
