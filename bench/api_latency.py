"""API latency under load, uncached and cached side by side, rate limiting on, each route beside `/health`.

    python -m bench.api_latency [--markets 1000] [--hours 25] [--duration 10] [--concurrency 100] [--workers 2]
                                [--raw-limit 100] [--modes uncached,cached] [--keep-database NAME]

1. Data reaches the database through the recorder's sink (:class:`~kalshi_analytics.recorder.sink.Sink`):
   the market rows, then one snapshot of every market each 15 s for ``--hours`` hours up to now, in time
   order as polls arrive — COPY, the 1-minute candles folded from each batch, the commit notification, one unit
   of work per batch, exactly the recorder's path. 1,000 markets × 25 h = 6 M snapshots and 1.5 M candles
   (every market has more than the 1,440 candles of a full day). ``--keep-database NAME`` keeps it; a later
   run with the same NAME tops the series up to now through the sink.
2. Per mode, ``kalshi-analytics api --workers N`` serves it on 127.0.0.1 (access log off): first
   ``uncached`` (``API_CACHE_MB=0``, every answer from PostgreSQL), then ``cached`` (the default response
   cache, each path asked once per warm-up connection first: the steady state of a running service).
   Rate limiting stays on (see ``RATE_NOTE``).
3. wrk (or, without it, a bounded asyncio client) drives each route for ``--duration`` seconds with
   ``--concurrency`` connections, loopback only; requests/s, p50/p95/p99, and the ratio to ``/health``
   (the full FastAPI stack without a database), measured just before and just after it (``--rounds``: repeated).

Goals (issue 12): every uncached read route ≥ 0.25× `/health` with p95 ≤ 50 ms; cached reads ≥ 1.3×.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
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
from kalshi_analytics.recorder.rows import MarketRow, SnapshotRow
from kalshi_analytics.recorder.sink import Sink

STEP_SECONDS = 15
HOURS = 25
PRICES = [Decimal(i) / 100 for i in range(101)]
SIZES = (Decimal(100), Decimal(120))


def ticker_of(i: int) -> str:
    return f"KXBENCH-{i:04d}"


def market_rows(markets: int, t0: datetime) -> list[MarketRow]:
    return [
        MarketRow(
            ticker=ticker_of(m),
            event_ticker=f"KXBENCHEV-{m // 10}",
            series_ticker="KXBENCH",
            title=f"Benchmark market number {m} closes above {m % 97}",
            category="Climate" if m % 3 == 0 else "Economics",
            status="closed" if m % 10 == 0 else "active",
            open_time=t0,
            close_time=t0 + timedelta(days=2 + m % 30),
            volume=Decimal(0),
            open_interest=Decimal(1000 + m),
        )
        for m in range(markets)
    ]


def snapshot_row(m: int, s: int, ts: datetime, received_at: datetime) -> SnapshotRow:
    # Prices wander on the 0.01 grid; every 7th snapshot has a wide (0.12) spread, so the implied probability
    # falls back to the last price there.
    bid = round(30 + 40 * (0.5 + 0.5 * math.sin(s / 150.0 + m)))
    spread = 12 if s % 7 == 0 else 2
    return SnapshotRow(
        ticker_of(m),
        ts,
        "poll",
        received_at,
        None,
        PRICES[bid],
        PRICES[bid + spread],
        PRICES[100 - bid - spread],
        PRICES[100 - bid],
        PRICES[bid + 1],
        SIZES[0],
        SIZES[1],
        Decimal(s * 10),
        Decimal(1000 + m),
        "active",
    )


async def load(url: str, markets: int, start: datetime, end: datetime) -> int:
    """Write one snapshot of every market each ``STEP_SECONDS`` in ``[start, end)`` through the recorder's
    sink — the COPY of the snapshots, the 1-minute candles folded from them and the commit notification, one
    unit of work per batch, as the recorder writes — in time order, as polls arrive. Returns the rows written.

    Step ``s`` is counted from the epoch, so a top-up of a kept database continues the same series."""
    engine = create_engine(url, pool_size=2)
    started = time.perf_counter()
    written = 0
    first = math.ceil(start.timestamp() / STEP_SECONDS)
    last = math.ceil(end.timestamp() / STEP_SECONDS)
    try:
        async with engine.begin() as conn:  # as the recorder does at start: the months it will write exist
            for table in ("market_snapshots", "orderbook_snapshots"):
                await conn.execute(
                    text("SELECT ka_ensure_monthly_partitions(CAST(:t AS regclass), CAST(:d AS date), 3)"),
                    {"t": table, "d": (start - timedelta(days=31)).date()},
                )
        # A bulk load closes every market's hour at once: room for all their blocks and chunks in each batch.
        async with Sink(
            engine,
            batch_max_rows=10_000,
            queue_max=40_000,
            candle_blocks_per_batch=markets,
            snapshot_chunk_hours_per_batch=markets,
        ) as sink:
            for row in market_rows(markets, start):
                await sink.put(row)
            next_report = time.perf_counter() + 15
            for s in range(first, last):
                poll = datetime.fromtimestamp(s * STEP_SECONDS, UTC)
                received = poll + timedelta(milliseconds=150)
                for m in range(markets):
                    # Every exchange time distinct (1 ms apart per market), one receipt time per poll.
                    row = snapshot_row(m, s, poll + timedelta(milliseconds=m), received)
                    if not sink.put_nowait(row):
                        await sink.put(row)
                written += markets
                if time.perf_counter() > next_report:
                    next_report += 15
                    rate = sink.stats.done / (time.perf_counter() - started)
                    print(
                        f"  {poll:%Y-%m-%d %H:%M} {written:,} snapshots put, {rate:,.0f} rows/s committed", flush=True
                    )
            await sink.flush()
            # Hours found to close in the last batches are rendered by the next ones: give the sink batches (a
            # market row again, changing nothing) until its keeper has none left, so a short top-up leaves every
            # closed hour with its blocks and chunks, as a running recorder would.
            for _ in range(20):
                if not sink.blocks.queued:
                    break
                await sink.put(market_rows(1, start)[0])
                await sink.flush()
            stats = sink.stats
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    secs = time.perf_counter() - started
    print(
        f"through the sink: {written:,} snapshots ({stats.new.get('market_snapshots', 0):,} new), "
        f"{stats.candles_upserted:,} candle upserts, {stats.batches:,} batches in {secs:.0f} s "
        f"= {written / secs:,.0f} rows/s",
        flush=True,
    )
    return written


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
-- Each wrk thread draws its own random paths (unseeded, both threads would ask for the same paths in the same
-- order, and requests that meet in flight share one build).
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args) math.randomseed(os.time() * 1000 + id) end
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


async def cache_counters(port: int, samples: int = 24) -> tuple[float, float]:
    """(hits, misses) of the response caches of all workers: each process counts its own, and a connection
    reaches one of them, so /metrics is read on ``samples`` connections while no load runs (each worker's
    counters stand still) and the distinct readings are added up."""
    readings: set[tuple[float, float]] = set()
    for _ in range(samples):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
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
        readings.add((values.get("kalshi_api_cache_hits_total", 0.0), values.get("kalshi_api_cache_misses_total", 0.0)))
    return sum(r[0] for r in readings), sum(r[1] for r in readings)


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


async def series_span(url: str) -> tuple[datetime, datetime] | None:
    """First and last snapshot time of the kept series (its first market), None when nothing is stored."""
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT min(first_ts), max(last_ts) FROM market_candles_1m WHERE ticker = :t"),
                    {"t": ticker_of(0)},
                )
            ).one()
    finally:
        await engine.dispose()
    return None if row[0] is None else (row[0], row[1])


async def record_like_the_recorder(url: str, tickers: list[str], start: datetime, stop: asyncio.Event) -> int:
    """Write one new snapshot of every market each 5 s through the recorder's Sink (commit + NOTIFY), as the
    poll loop does: each market's cached answers are invalidated every 5 s while the routes are measured."""
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


def start_server(url: str, port: int, workers: int, cache_mb: int | None, rate: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DB_URL": url, "LOG_LEVEL": "WARNING"}
    if rate == "off":
        env["API_RATE_LIMIT_ENABLED"] = "false"
    else:
        # The limiter stays on (every request is charged, as by default) with room for one address's load:
        # see RATE_NOTE.
        env |= {"API_RATE_LIMIT_ENABLED": "true", "API_RATE_READ": rate, "API_RATE_EXPENSIVE": rate}
    if cache_mb is not None:
        env["API_CACHE_MB"] = str(cache_mb)
    argv = ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen([sys.executable, "-m", "kalshi_analytics", *argv], env=env)


RATE_NOTE = """\
Rate limiting is ON: every request is charged to its classes ("read"; "expensive" too for raw pages) by the
same limiter as in production. At the defaults (1200/minute reads, 60/minute expensive per client address)
the bench's 100 connections from 127.0.0.1 would be refused after the first second, so both limits are set
to {rate}: a short window keeps the moving window's per-client list as short as a default client's."""


async def measure(
    port: int,
    routes: dict[str, list[str]],
    args: argparse.Namespace,
    cached: bool,
    use_wrk: bool,
) -> dict[str, dict[str, float]]:
    """Each route between two `/health` runs, its ratio taken to their mean: on a shared machine the load of the
    moment moves both, and the ratio of neighbours is what holds still (one `/health` run before only, as this
    bench did first, let a drift of the load between the two show as a ratio). With ``--rounds`` > 1 a route is
    measured that many times, bracketed each time, and its row shows the round with the median ratio (and the
    range). The `/health` row is the median of its runs."""

    async def run(paths: list[str], duration: float) -> dict[str, float]:
        if use_wrk:
            return await drive_wrk(port, paths, duration, args.concurrency, args.gzip)
        return await drive("127.0.0.1", port, paths, duration, args.concurrency, args.gzip)

    health_name, health_paths = next(iter(routes.items()))
    health_seconds = max(3.0, args.duration / 2)
    out: dict[str, dict[str, float]] = {}
    healths: list[dict[str, float]] = []
    for name, paths in list(routes.items())[1:]:
        if args.only and args.only not in name:
            continue
        if cached and args.warm_connections:
            await warm("127.0.0.1", port, paths, args.warm_connections, args.gzip)
        rounds: list[dict[str, float]] = []
        before = await run(health_paths, health_seconds)
        healths.append(before)
        for _ in range(args.rounds):
            hits0, misses0 = await cache_counters(port)
            r = await run(paths, args.duration)
            hits1, misses1 = await cache_counters(port)
            after = await run(health_paths, health_seconds)
            healths.append(after)
            answered = (hits1 - hits0) + (misses1 - misses0)
            # Cached: answers sent from the cache. Uncached: requests that joined another's query in flight (the
            # same path asked at the same moment shares one build; nothing is kept).
            r["hits"] = (hits1 - hits0) / answered if answered else float("nan")
            r["health"] = (before["rps"] + after["rps"]) / 2
            r["ratio"] = r["rps"] / r["health"]
            rounds.append(r)
            before = after
        ratios = sorted(x["ratio"] for x in rounds)
        r = sorted(rounds, key=lambda x: x["ratio"])[len(rounds) // 2]
        r["ratio_min"], r["ratio_max"] = ratios[0], ratios[-1]
        out[name] = r
        hits = f"{r['hits']:8.1%}" if r["hits"] == r["hits"] else f"{'-':>8}"
        errors = f"  {r['errors']:.0f} errors" if r["errors"] else ""
        flag = "" if r["p95"] <= 50 else "  (p95 over 50 ms)"
        spread = f" (rounds {ratios[0]:.2f}–{ratios[-1]:.2f}×)" if len(rounds) > 1 else ""
        print(
            f"  {name:52} {r['rps']:8.0f} {r['p50']:7.1f} {r['p95']:7.1f} {r['p99']:7.1f} "
            f"{r['ratio']:6.2f}× {hits}{errors}{flag}  (/health around it: {r['health']:,.0f}){spread}",
            flush=True,
        )
    if healths:
        mid = sorted(healths, key=lambda h: h["rps"])[len(healths) // 2]
        out = {health_name: {**mid, "health": mid["rps"], "hits": float("nan"), "ratio": 1.0}, **out}
        print(
            f"  {health_name:52} {mid['rps']:8.0f} {mid['p50']:7.1f} {mid['p95']:7.1f} {mid['p99']:7.1f}  "
            f"(median of {len(healths)} runs)"
        )
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markets", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=HOURS, help="hours of data, ending now")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per route")
    ap.add_argument(
        "--rounds", type=int, default=1, help="measure each route this many times, each between two /health runs"
    )
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
        "--modes",
        default="uncached,cached",
        help="uncached (API_CACHE_MB=0: every answer from PostgreSQL), cached (the default cache, warmed)",
    )
    ap.add_argument("--cache-mb", type=int, default=None, help="API_CACHE_MB of the cached mode (default: settings)")
    ap.add_argument(
        "--rate-limit",
        default="1000000/second",
        help="API_RATE_READ and API_RATE_EXPENSIVE, limiter on; 'off' turns rate limiting off",
    )
    ap.add_argument(
        "--warm-connections",
        type=int,
        default=20,
        help="cached mode: connections that each ask for every path once before measuring (0 = measure cold)",
    )
    ap.add_argument("--only", help="measure only the routes whose name contains this text (and /health)")
    ap.add_argument(
        "--record",
        action="store_true",
        help="while measuring, write a snapshot of every market each 5 s through the recorder's sink",
    )
    ap.add_argument(
        "--keep-database",
        metavar="NAME",
        help="load into database NAME and keep it; a later run tops it up to now through the sink",
    )
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    async with contextlib.AsyncExitStack() as stack:
        if args.keep_database:
            url, created = await kept_database(args.keep_database)
            span = None if created else await series_span(url)
            if span is None:
                await load(url, args.markets, now - timedelta(hours=args.hours), now)
            else:
                begin = max(span[1] + timedelta(seconds=1), now - timedelta(hours=args.hours))
                print(f"reusing database {args.keep_database}: series {span[0]:%Y-%m-%d %H:%M} → {span[1]:%H:%M} UTC")
                if begin < now:
                    print(f"  topping it up to {now:%H:%M} UTC through the sink")
                    await load(url, args.markets, begin, now)
        else:
            url = await stack.enter_async_context(fresh_database())
            await load(url, args.markets, now - timedelta(hours=args.hours), now)
        span = await series_span(url)
        assert span is not None
        # "One day": the last 24 whole hours of the series (1,440 one-minute candles of every market).
        end = span[1].replace(minute=0, second=0, microsecond=0)
        day_start, day_end = quote((end - timedelta(days=1)).isoformat()), quote(end.isoformat())
        tickers = [ticker_of(i) for i in range(args.markets)]
        routes = {
            "/health (no database; calibration)": ["/api/v1/health"],
            "/markets/{t}/latest": [f"/api/v1/markets/{t}/latest" for t in tickers],
            "/markets (first page, 100)": ["/api/v1/markets"],
            "/markets/{t}/history?interval=1m (one day)": [
                f"/api/v1/markets/{t}/history?interval=1m&start={day_start}&end={day_end}" for t in tickers
            ],
            f"/markets/{{t}}/history raw page ({args.raw_limit})": [
                f"/api/v1/markets/{t}/history?start={day_start}&end={day_end}&limit={args.raw_limit}" for t in tickers
            ],
            "/markets/{t}/history?interval=1m (no start/end)": [
                f"/api/v1/markets/{t}/history?interval=1m" for t in tickers
            ],
            "/markets/{t}/history (no parameters: raw, 1000)": [f"/api/v1/markets/{t}/history" for t in tickers],
        }
        use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)
        print(
            f"\n{args.markets} markets, one snapshot each {STEP_SECONDS} s, through {end:%Y-%m-%d %H:%M} UTC; "
            f"{args.workers} workers; {args.concurrency} connections ({'wrk' if use_wrk else 'python'}); "
            f"{args.duration:g} s per route; gzip {'accepted' if args.gzip else 'not accepted'}"
        )
        if args.rate_limit == "off":
            print("rate limiting OFF")
        else:
            print(RATE_NOTE.format(rate=args.rate_limit))
        results: dict[str, dict[str, dict[str, float]]] = {}
        for mode in modes:
            cached = mode == "cached"
            port = free_port()
            proc = start_server(url, port, args.workers, args.cache_mb if cached else 0, args.rate_limit)
            stop_writer = asyncio.Event()
            writer = None
            try:
                await wait_healthy(port, proc)
                label = (
                    "cached (steady state: every path asked once per connection first)"
                    if cached
                    else ("uncached (API_CACHE_MB=0: every answer from PostgreSQL)")
                )
                print(f"\n{label}")
                if args.record:
                    print("  recording meanwhile: one snapshot per market every 5 s through the sink (commit + NOTIFY)")
                    writer = asyncio.create_task(
                        record_like_the_recorder(url, tickers, datetime.now(UTC).replace(microsecond=0), stop_writer)
                    )
                shared = "cached" if cached else "joined"
                print(f"  {'route':52} {'req/s':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'health':>7} {shared:>8}")
                results[mode] = await measure(port, routes, args, cached, use_wrk)
            finally:
                if writer is not None:
                    stop_writer.set()
                    print(f"  snapshots written through the sink meanwhile: {await writer:,}")
                proc.terminate()
                proc.wait(20)
        if len(results) == 2:
            print("\nside by side (ms; × = req/s over the mean of /health's runs around it, same mode)")
            names = [n for n in routes if all(n in r for r in results.values())]
            for n in names:
                u, c = results["uncached"][n], results["cached"][n]
                print(
                    f"| {n} | {u['rps']:,.0f} | {u['p50']:.1f} / {u['p95']:.1f} / {u['p99']:.1f} | "
                    f"**{u['ratio']:.2f}×** | {c['rps']:,.0f} | {c['p50']:.1f} / {c['p95']:.1f} / {c['p99']:.1f} | "
                    f"**{c['ratio']:.2f}×** |"
                )


if __name__ == "__main__":
    asyncio.run(main())
