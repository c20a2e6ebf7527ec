"""API latency under load: 1,000 markets × 10,000 snapshots (10 M rows), 2 uvicorn workers, 100 clients.

    python -m bench.api_latency [--markets 1000] [--snapshots 10000] [--duration 10] [--concurrency 100]
                                [--workers 2] [--raw-limit 100]

1. A fresh database (embedded server, or BENCH_DATABASE_URL) is filled server-side with
   ``INSERT … SELECT generate_series`` — snapshots 5 s apart per market, written into the monthly partitions —
   and the matching ``market_candles_1m`` rows are computed in SQL with the same implied-probability rule.
   This bulk load BYPASSES the recorder's sink on purpose (10 M rows through the sink would take minutes and
   measure ingest, not the API); the tests fill their databases through the sink.
2. ``kalshi-analytics api --workers N`` serves it on 127.0.0.1 (access log off, rate limits off).
3. A bounded async load generator (raw HTTP/1.1 keep-alive connections on asyncio streams: cheap enough
   that the client does not eat the server's CPU) drives each route for ``--duration`` seconds with
   ``--concurrency`` connections, loopback only, and reports requests/s and p50/p95/p99.

Target: p95 ≤ 50 ms on every route.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from sqlalchemy import text

from bench.common import free_port, fresh_database, kept_database
from kalshi_analytics.db.engine import create_engine

STEP_SECONDS = 5
CHUNK_MARKETS = 50


def ticker_of(i: int) -> str:
    return f"KXBENCH-{i:04d}"


async def load(url: str, markets: int, snapshots: int, t0: datetime) -> None:
    engine = create_engine(url, pool_size=2)
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            for table in ("market_snapshots", "orderbook_snapshots"):
                await conn.execute(
                    text("SELECT ka_ensure_monthly_partitions(CAST(:t AS regclass), CAST(:d AS date), 3)"),
                    {"t": table, "d": (t0 - timedelta(days=31)).date()},
                )
            await conn.execute(
                text(
                    "INSERT INTO markets (ticker, event_ticker, series_ticker, title, category, status, open_time, "
                    "close_time, volume, open_interest) "
                    "SELECT 'KXBENCH-' || lpad(m::text, 4, '0'), 'KXBENCHEV-' || (m / 10), 'KXBENCH', "
                    "'Benchmark market number ' || m || ' closes above ' || (m % 97), "
                    "CASE WHEN m % 3 = 0 THEN 'Climate' ELSE 'Economics' END, "
                    "CASE WHEN m % 10 = 0 THEN 'closed' ELSE 'active' END, CAST(:t0 AS timestamptz), "
                    "CAST(:t0 AS timestamptz) + make_interval(days => 1 + m % 30), CAST(:snaps AS int) * 10, 1000 + m "
                    "FROM generate_series(0, CAST(:markets AS int) - 1) m"
                ),
                {"t0": t0, "snaps": snapshots, "markets": markets},
            )
        for lo in range(0, markets, CHUNK_MARKETS):
            hi = min(markets, lo + CHUNK_MARKETS) - 1
            async with engine.begin() as conn:
                # Prices wander on the 0.01 grid; every 7th snapshot has a wide (0.12) spread, so the
                # implied probability falls back to the last price there.
                await conn.execute(
                    text(
                        "INSERT INTO market_snapshots (ticker, ts, source, received_at, sequence, yes_bid, yes_ask, "
                        "no_bid, no_ask, last_price, yes_bid_size, yes_ask_size, volume, open_interest, status) "
                        "SELECT 'KXBENCH-' || lpad(m::text, 4, '0'), ts, 'poll', ts + interval '150 ms', NULL, "
                        "bid, bid + spread, 1 - bid - spread, 1 - bid, bid + 0.01, 100, 120, s * 10, 1000 + m, "
                        "'active' FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) m, "
                        "generate_series(0, CAST(:snaps AS int) - 1) s, LATERAL (SELECT CAST(:t0 AS timestamptz) "
                        "+ make_interval(secs => (CAST(:step AS int) * s + m * 0.001)::float8) "
                        "AS ts, round((0.30 + 0.40 * (0.5 + 0.5 * sin(s / 150.0 + m)))::numeric, 2) AS bid, "
                        "CASE WHEN s % 7 = 0 THEN 0.12 ELSE 0.02 END AS spread) p"
                    ),
                    {"lo": lo, "hi": hi, "snaps": snapshots, "t0": t0, "step": STEP_SECONDS},
                )
                await conn.execute(
                    text(
                        "INSERT INTO market_candles_1m SELECT ticker, date_trunc('minute', ts), min(ts), max(ts), "
                        "(array_agg(prob ORDER BY ts))[1], max(prob), min(prob), "
                        "(array_agg(prob ORDER BY ts DESC))[1], "
                        "(array_agg(last_price ORDER BY ts))[1], max(last_price), min(last_price), "
                        "(array_agg(last_price ORDER BY ts DESC))[1], (array_agg(yes_bid ORDER BY ts DESC))[1], "
                        "(array_agg(yes_ask ORDER BY ts DESC))[1], (array_agg(volume ORDER BY ts DESC))[1], "
                        "(array_agg(open_interest ORDER BY ts DESC))[1], count(*) "
                        "FROM (SELECT *, CASE WHEN yes_ask - yes_bid BETWEEN 0 AND 0.10 "
                        "THEN round((yes_bid + yes_ask) / 2, 4) ELSE last_price END AS prob "
                        "FROM market_snapshots WHERE ticker BETWEEN :a AND :b) s GROUP BY 1, 2"
                    ),
                    {"a": ticker_of(lo), "b": ticker_of(hi)},
                )
            done = hi + 1
            rate = done * snapshots / (time.perf_counter() - started)
            print(f"  loaded {done}/{markets} markets ({done * snapshots:,} snapshots, {rate:,.0f} rows/s)", flush=True)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    print(f"bulk load: {markets * snapshots:,} snapshots in {time.perf_counter() - started:.0f} s", flush=True)


# --------------------------------------------------------------------------------------------- load generator
async def _connection(
    host: str, port: int, paths: list[str], stop_at: float, lat: list[float], errs: list[str], gzip: bool
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    extra = "Accept-Encoding: gzip\r\n" if gzip else ""
    try:
        while time.perf_counter() < stop_at:
            path = random.choice(paths)
            t = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = None
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length is None:
                raise RuntimeError(f"no content-length for {path}")
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            if status != 200:
                errs.append(f"{status} {path}")
    finally:
        writer.close()


async def drive(
    host: str, port: int, paths: list[str], duration: float, concurrency: int, gzip: bool
) -> dict[str, float]:
    lat: list[float] = []
    errs: list[str] = []
    # Warm up (connections, plans, caches), then measure.
    warm_until = time.perf_counter() + 1
    await asyncio.gather(*(_connection(host, port, paths, warm_until, [], [], gzip) for _ in range(concurrency)))
    start = time.perf_counter()
    stop_at = start + duration
    await asyncio.gather(*(_connection(host, port, paths, stop_at, lat, errs, gzip) for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    if errs:
        print(f"    {len(errs)} non-200 answers, e.g. {errs[:3]}")
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    return {
        "requests": len(lat),
        "rps": len(lat) / elapsed,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "errors": len(errs),
    }


WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local headers = {}
if os.getenv("WRK_GZIP") == "1" then headers["Accept-Encoding"] = "gzip" end
request = function() return wrk.format("GET", paths[math.random(#paths)], headers) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %f %f %f %f %d status=%d,connect=%d,read=%d,write=%d,timeout=%d\\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def _wrk_files(tmp: str, paths: list[str]) -> tuple[str, str]:
    script, listing = f"{tmp}/paths.lua", f"{tmp}/paths.txt"
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    with open(listing, "w") as f:
        f.write("\n".join(paths) + "\n")
    return script, listing


async def warm(host: str, port: int, paths: list[str], connections: int, gzip: bool) -> None:
    """Ask for every path once on each of ``connections`` connections (each in its own shuffled order): a
    connection stays with one worker, so every worker's cache sees every path and the measurement that follows
    is the steady state of a running service, not the first fill."""

    async def one_connection() -> None:
        todo = list(paths)
        random.shuffle(todo)
        reader, writer = await asyncio.open_connection(host, port)
        extra = "Accept-Encoding: gzip\r\n" if gzip else ""
        try:
            for path in todo:
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(ln[15:]) for ln in head.split(b"\r\n") if ln[:15].lower() == b"content-length:")
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


async def cache_counters(port: int) -> tuple[float, float]:
    """(hits, misses) of the response cache of whichever worker answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(ln[15:]) for ln in head.split(b"\r\n") if ln[:15].lower() == b"content-length:")
        body = (await reader.readexactly(length)).decode()
    finally:
        writer.close()
    values = {}
    for line in body.splitlines():
        name, _, value = line.partition(" ")
        if name in ("kalshi_api_cache_hits_total", "kalshi_api_cache_misses_total"):
            values[name] = float(value)
    return values.get("kalshi_api_cache_hits_total", 0.0), values.get("kalshi_api_cache_misses_total", 0.0)


async def drive_wrk(port: int, paths: list[str], duration: float, concurrency: int, gzip: bool) -> dict[str, float]:
    """The same measurement with wrk (C, 2 threads): the client costs the server less CPU."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        script, listing = _wrk_files(tmp, paths)
        cmd = [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "-s",
            script,
            f"http://127.0.0.1:{port}",
        ]
        warm = [*cmd[:3], "-d1s", *cmd[4:]]
        for c in (warm, cmd):
            proc = await asyncio.create_subprocess_exec(
                *c, env={**os.environ, "WRK_PATHS": listing, "WRK_GZIP": str(int(gzip))}, stdout=asyncio.subprocess.PIPE
            )
            out, _ = await proc.communicate()
    line = next(ln for ln in out.decode().splitlines() if ln.startswith("RESULT"))
    n, secs, p50, p95, p99, errors, kinds = line.split()[1:]
    if int(errors):
        print(f"    {errors} errors or non-2xx answers ({kinds})")
    return {
        "requests": int(n),
        "rps": int(n) / float(secs),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "errors": int(errors),
    }


async def first_snapshot_time(url: str) -> datetime:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            ts = (await conn.execute(text("SELECT min(minute) FROM market_candles_1m"))).scalar_one()
    finally:
        await engine.dispose()
    if ts is None:
        raise SystemExit("the kept database holds no data: drop it and run again")
    return ts.replace(second=0, microsecond=0)


async def record_like_the_recorder(url: str, tickers: list[str], start: datetime, stop: asyncio.Event) -> int:
    """Write one new snapshot of every market each 5 s through the recorder's Sink (commit + NOTIFY), as the
    poll loop does: each market's cached answers are invalidated every 5 s while the routes are measured."""
    from kalshi_analytics.recorder.rows import SnapshotRow
    from kalshi_analytics.recorder.sink import Sink

    engine = create_engine(url, pool_size=2)
    written = 0
    try:
        async with Sink(engine, batch_max_seconds=0.1) as sink:
            k = 0
            while not stop.is_set():
                ts = start + timedelta(seconds=STEP_SECONDS * k)
                # Spread each round over the 5 s, as polls of 1,000 markets arrive page by page.
                for i in range(0, len(tickers), 100):
                    now = datetime.now(UTC)
                    for t in tickers[i : i + 100]:
                        await sink.put(
                            SnapshotRow(
                                ticker=t,
                                ts=ts,
                                source="poll",
                                received_at=now,
                                yes_bid=Decimal("0.45"),
                                yes_ask=Decimal("0.47"),
                                last_price=Decimal("0.46"),
                            )
                        )
                    written += min(100, len(tickers) - i)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), STEP_SECONDS / (len(tickers) / 100))
                k += 1
            await sink.flush()
    finally:
        await engine.dispose()
    return written


async def wait_healthy(port: int, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("API server exited")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            if head.startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("API server did not become healthy")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=10_000, help="per market, 5 s apart")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per route")
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--raw-limit", type=int, default=100, help="page size of the raw-history route")
    ap.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator (auto: wrk when installed)"
    )
    ap.add_argument(
        "--gzip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send Accept-Encoding: gzip, as browsers and httpx do (default on)",
    )
    ap.add_argument(
        "--cache-mb", type=int, default=None, help="API_CACHE_MB for the server (0 = every answer from PostgreSQL)"
    )
    ap.add_argument(
        "--warm-connections",
        type=int,
        default=20,
        help="connections that each ask for every path once before measuring (0 = measure cold)",
    )
    ap.add_argument("--only", help="measure only the routes whose name contains this text")
    ap.add_argument(
        "--record",
        action="store_true",
        help="while measuring, write a snapshot of every market each 5 s through the recorder's sink",
    )
    ap.add_argument(
        "--keep-database",
        metavar="NAME",
        help="load into database NAME and keep it; a later run with the same NAME skips the load",
    )
    args = ap.parse_args()

    # The series ends one hour ago, so "the last day" is a realistic dashboard window.
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    t0 = end - timedelta(seconds=STEP_SECONDS * args.snapshots)
    async with contextlib.AsyncExitStack() as stack:
        if args.keep_database:
            url, created = await kept_database(args.keep_database)
            if created:
                await load(url, args.markets, args.snapshots, t0)
            else:
                t0 = await first_snapshot_time(url)
                end = t0 + timedelta(seconds=STEP_SECONDS * args.snapshots)
                print(f"reusing database {args.keep_database} (series {t0:%Y-%m-%d %H:%M} → {end:%H:%M} UTC)")
        else:
            url = await stack.enter_async_context(fresh_database())
            await load(url, args.markets, args.snapshots, t0)
        port = free_port()
        env = {**os.environ, "DB_URL": url, "API_RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING"}
        if args.cache_mb is not None:
            env["API_CACHE_MB"] = str(args.cache_mb)
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [
                sys.executable,
                "-m",
                "kalshi_analytics",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
        )
        try:
            await wait_healthy(port, proc)
            tickers = [ticker_of(i) for i in range(args.markets)]
            day_start = quote((end - timedelta(days=1)).isoformat())
            day_end = quote(end.isoformat())
            routes = {
                "/health (no database; calibration)": ["/api/v1/health"],
                "/markets/{t}/latest": [f"/api/v1/markets/{t}/latest" for t in tickers],
                "/markets/{t}/history?interval=1m (1 day)": [
                    f"/api/v1/markets/{t}/history?interval=1m&start={day_start}&end={day_end}" for t in tickers
                ],
                "/markets (first page, 100)": ["/api/v1/markets"],
                f"/markets/{{t}}/history raw page ({args.raw_limit})": [
                    f"/api/v1/markets/{t}/history?start={day_start}&end={day_end}&limit={args.raw_limit}"
                    for t in tickers
                ],
            }
            use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
            cache = "off" if args.cache_mb == 0 else f"warmed on {args.warm_connections} connections"
            print(
                f"\n{args.markets} markets × {args.snapshots} snapshots; {args.workers} workers; "
                f"{args.concurrency} clients ({'wrk' if use_wrk else 'python'}); {args.duration:g} s per route; "
                f"gzip {'accepted' if args.gzip else 'not accepted'}; cache {cache}"
            )
            stop_writer = asyncio.Event()
            writer = None
            if args.record:
                print("recording meanwhile: one snapshot per market every 5 s through the sink (commit + NOTIFY)")
                # Exchange times from now on: new rows every run, also on a kept database.
                writer = asyncio.create_task(
                    record_like_the_recorder(url, tickers, datetime.now(UTC).replace(microsecond=0), stop_writer)
                )
            print(f"{'route':48} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'hits':>8}")
            for name, paths in routes.items():
                if args.only and args.only not in name:
                    continue
                if args.warm_connections and args.cache_mb != 0:
                    await warm("127.0.0.1", port, paths, args.warm_connections, args.gzip)
                hits0, misses0 = await cache_counters(port)
                if use_wrk:
                    r = await drive_wrk(port, paths, args.duration, args.concurrency, args.gzip)
                else:
                    r = await drive("127.0.0.1", port, paths, args.duration, args.concurrency, args.gzip)
                hits1, misses1 = await cache_counters(port)
                answered = (hits1 - hits0) + (misses1 - misses0)
                ratio = f"{(hits1 - hits0) / answered:8.1%}" if answered and args.cache_mb != 0 else f"{'-':>8}"
                flag = "" if r["p95"] <= 50 else "  (p95 over the 50 ms target)"
                print(
                    f"{name:48} {r['rps']:8.0f} {r['p50']:8.1f} {r['p95']:8.1f} {r['p99']:8.1f} {ratio}{flag}",
                    flush=True,
                )
            if writer is not None:
                stop_writer.set()
                print(f"snapshots written through the sink meanwhile: {await writer:,}")
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    asyncio.run(main())
