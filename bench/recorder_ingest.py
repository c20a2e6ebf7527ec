"""End-to-end ingest of the recorder: simulator → WebSocket → parse → rows → PostgreSQL.

The simulator runs in its own process (as ``kalshi-analytics simulate`` would); the real
:class:`~kalshi_analytics.recorder.service.RecorderService` (leader election, sink, poll, stream, gaps) runs
here against a fresh, migrated database (embedded, or BENCH_DATABASE_URL).

Phase 1, throughput: the simulator at a high speed; messages handled by the stream loop per second, and rows
committed per second (ticker → snapshots, trade → trades; book deltas only feed the in-memory books, whose
rows are written every ``book_interval``). Beside it, in the same run and on the same simulator settings (a fresh
simulator each time), the plain ``websockets`` + ``json.loads`` client of ``bench/sim_ws_emit.py``: the
recorder's figure over the plain one is the ratio the recorder is held to. ``--rounds N`` alternates the two
N times and reports medians (the machine is shared: single figures are noisy).
Phase 2, latency: the simulator at real-time speed (its clock = wall clock, so exchange timestamps are
comparable with commit times) with activity set for about ``--rate`` msg/s; p50/p99 of exchange ts → commit of
every new snapshot and trade row.

    .venv/bin/python -m bench.recorder_ingest [--seconds 15] [--markets 300] [--speed 600] [--rounds 3]
        [--no-latency]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import fresh_database, simulator_args, simulator_process
from bench.sim_ws_emit import measure_plain_client
from kalshi_analytics.config import load_settings
from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.recorder import sink as sink_module
from kalshi_analytics.recorder.service import RecorderConfig, RecorderService

LAGS: list[float] = []
# Only in the latency phase: the per-row bookkeeping is the benchmark's, not the recorder's work.
RECORDING = {"lags": False}


async def _clock_offset(port: int) -> float:
    """Simulated clock minus wall clock (s): the simulator's start-up delay, removed from the measured lags."""
    import httpx

    samples = []
    async with httpx.AsyncClient() as http:
        for _ in range(20):
            t0 = time.time()
            now_ts = (await http.get(f"http://127.0.0.1:{port}/_sim/clock")).json()["now_ts"]
            t1 = time.time()
            samples.append(now_ts - (t0 + t1) / 2)
            await asyncio.sleep(0.05)
    return statistics.median(samples)


def _record_lags() -> None:
    """Measure exchange → commit per new row precisely (the metrics histogram only has buckets)."""
    original = sink_module.Sink._on_success

    def patched(self: Any, o: Any, items: int) -> None:
        if RECORDING["lags"]:
            now = datetime.now(UTC)
            LAGS.extend((now - ts).total_seconds() for _, ts in o.lags)
        original(self, o, items)

    sink_module.Sink._on_success = patched  # type: ignore[method-assign]


async def _phase(
    db_url: str, *, markets: int, speed: float, activity: float, seconds: float, realtime: bool
) -> dict[str, Any]:
    with simulator_process(markets, speed, activity, realtime=realtime) as port:
        return await _measure_recorder(db_url, port, seconds=seconds, realtime=realtime)


async def _plain_phase(*, markets: int, speed: float, activity: float, seconds: float) -> dict[str, Any]:
    with simulator_process(markets, speed, activity) as port:
        out = await measure_plain_client(port, seconds)
    return {
        "seconds": round(out["seconds"], 2),
        "messages": out["messages"],
        "msg_per_s": round(out["msg_per_s"]),
        "cpu_us_per_msg": round(out["cpu_us_per_msg"], 1),
    }


async def _measure_recorder(db_url: str, port: int, *, seconds: float, realtime: bool) -> dict[str, Any]:
    engine = create_engine(db_url, pool_size=4)
    try:
        base = f"http://127.0.0.1:{port}/trade-api/v2"
        settings = load_settings(
            kalshi_api_base=base, kalshi_ws_url=f"ws://127.0.0.1:{port}/trade-api/ws/v2", kalshi_rate_limit_rps=1000
        )
        cfg = RecorderConfig(
            poll_interval=5.0,
            summary_seconds=5.0,
            rejected_frames_path=Path(tempfile.gettempdir()) / "ka-bench-rejected.jsonl",
            sweep_every=None,
        )
        service = RecorderService(engine, settings, cfg)
        stop = asyncio.Event()
        for _ in range(100):  # wait for the simulator process
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        task = asyncio.create_task(service.run(stop))
        await asyncio.wait_for(service.ready.wait(), 60)
        # A first start may read back the hours before it (the resume: every market's trades over REST); that
        # is start-up work, not the sustained ingest, so the measurement starts once it is done.
        started = time.perf_counter()
        assert service.gaps is not None
        resumes = [t for t in service.gaps.tasks if t.get_name().startswith("resume-")]
        if resumes:
            await asyncio.wait(resumes, timeout=120)
        resume_s = time.perf_counter() - started
        await asyncio.sleep(2.0)  # warm-up: initial snapshots
        assert service.stream is not None
        assert service.sink is not None
        offset = await _clock_offset(port) if realtime else 0.0
        RECORDING["lags"] = realtime
        LAGS.clear()
        m0, s0, t0 = service.stream.messages, sum(service.sink.stats.new.values()), time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.sleep(seconds)
        m1, s1, t1 = service.stream.messages, sum(service.sink.stats.new.values()), time.perf_counter()
        cpu = time.process_time() - cpu0
        lags = sorted(x + offset for x in LAGS)
        queue = service.sink.stats.queue_depth
        ws_backlog = service.ws.backlog if service.ws is not None else 0
        stop.set()
        await asyncio.wait_for(task, 60)
    finally:
        await engine.dispose()
    out: dict[str, Any] = {
        "seconds": round(t1 - t0, 2),
        "resume_waited_s": round(resume_s, 1),
        "messages": m1 - m0,
        "msg_per_s": round((m1 - m0) / (t1 - t0)),
        # This process only (the simulator and PostgreSQL have their own): where the recorder's time goes.
        "cpu_us_per_msg": round(cpu / max(1, m1 - m0) * 1e6, 1),
        "rows_committed_per_s": round((s1 - s0) / (t1 - t0)),
        "sink_queue_at_end": queue,
        "ws_backlog_at_end": ws_backlog,
    }
    if lags and realtime:
        out["sim_clock_offset_ms"] = round(offset * 1000, 1)
        out.update(
            lag_rows=len(lags),
            lag_p50_ms=round(statistics.median(lags) * 1000, 1),
            lag_p99_ms=round(lags[int(0.99 * (len(lags) - 1))] * 1000, 1),
            lag_max_ms=round(lags[-1] * 1000, 1),
        )
    return out


async def main_async(args: argparse.Namespace) -> None:
    _record_lags()
    sim = {"markets": args.markets, "speed": args.speed, "activity": args.activity, "seconds": args.seconds}
    plain: list[float] = []
    recorder: list[float] = []
    for i in range(args.rounds):
        # Alternated, so a burst of load from the machine's other users hits both sides alike; a fresh database
        # each round, since the seeded simulator replays the same data (duplicates take the slow path).
        ref = await _plain_phase(**sim)
        print(f"round {i + 1} plain client:", json.dumps(ref))
        async with fresh_database() as url:
            thr = await _phase(url, **sim, realtime=False)
        print(f"round {i + 1} recorder:    ", json.dumps(thr))
        plain.append(ref["msg_per_s"])
        recorder.append(thr["msg_per_s"])
        print(f"round {i + 1} ratio: {thr['msg_per_s'] / ref['msg_per_s']:.2f}")
    lat = None
    if not args.no_latency:
        async with fresh_database() as url:
            lat = await _phase(
                url,
                markets=args.markets,
                speed=1.0,
                activity=args.latency_activity,
                seconds=args.seconds,
                realtime=True,
            )
        print("latency:   ", json.dumps(lat))
    rec, ref_med = statistics.median(recorder), statistics.median(plain)
    ratios = sorted(r / p for r, p in zip(recorder, plain, strict=True))
    print(
        f"sustained ingest: recorder {rec:,.0f} msg/s, plain websockets + json.loads {ref_med:,.0f} msg/s "
        f"(medians of {args.rounds}); ratio {rec / ref_med:.2f} (per round {', '.join(f'{x:.2f}' for x in ratios)}; "
        "target >= 0.80)"
    )
    if lat is not None:
        print(
            f"exchange->commit at {lat['msg_per_s']:,} msg/s: p50 {lat.get('lag_p50_ms')} ms, "
            f"p99 {lat.get('lag_p99_ms')} ms (target < 500 ms)"
        )


def main() -> None:
    from kalshi_analytics.logs import configure_logging

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    simulator_args(ap, seconds=15.0)
    ap.add_argument(
        "--latency-activity", type=float, default=30.0, help="trade-rate multiplier at real-time speed (~1,000 msg/s)"
    )
    ap.add_argument("--rounds", type=int, default=1, help="plain client / recorder pairs (medians reported)")
    ap.add_argument("--no-latency", action="store_true", help="skip phase 2 (the real-time latency run)")
    args = ap.parse_args()
    configure_logging("WARNING")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
