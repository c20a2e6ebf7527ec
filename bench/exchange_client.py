"""The typed client against the simulator (in its own process): WS messages/s parsed into domain objects, and
REST pages/s.

    .venv/bin/python -m bench.exchange_client [--seconds 5] [--markets 300] [--speed 600] [--activity 4]

WS: one ``KalshiWsClient`` subscribes to ticker, trade, market_lifecycle_v2 and orderbook_delta on every open
market; every frame goes through ``wire.parse_ws_message`` into a domain object and the seq check. Target
>= 20,000 msg/s. REST: ``iter_markets(limit=100)`` over all markets, repeated, with the client's token bucket
off (the simulator's rate limit is off too), so the figure is what client + server sustain.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from bench.common import simulator_args, simulator_process
from kalshi_analytics.kalshi import domain
from kalshi_analytics.kalshi.rest import KalshiRestClient
from kalshi_analytics.kalshi.ws import KalshiWsClient


async def _wait_ready(base: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(200):
            try:
                r = await http.get("/markets", params={"status": "open", "limit": 1000})
                return [m["ticker"] for m in r.json()["markets"]]
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("simulator did not start")


async def measure_ws(port: int, seconds: float) -> dict[str, float]:
    tickers = await _wait_ready(f"http://127.0.0.1:{port}/trade-api/v2")
    by_type: dict[str, int] = {}
    async with KalshiWsClient(f"ws://127.0.0.1:{port}/trade-api/ws/v2", watchdog_timeout=None) as ws:
        await ws.wait_connected()
        await ws.subscribe("ticker", send_initial_snapshot=True)
        await ws.subscribe("trade")
        await ws.subscribe("market_lifecycle_v2")
        await ws.subscribe("orderbook_delta", tickers)
        n = 0
        t0 = time.perf_counter()
        warm = t0 + 0.5  # let the snapshot burst pass
        deadline = warm + seconds
        async for ev in ws.events():
            now = time.perf_counter()
            if now < warm:
                continue
            if n == 0:
                t0 = now
            name = type(ev).__name__
            by_type[name] = by_type.get(name, 0) + 1
            n += 1
            if (n & 1023) == 0 and now >= deadline:
                break
        elapsed = time.perf_counter() - t0
        gaps = ws.counters.gaps
        bad = ws.counters.bad_frames
    data = sum(v for k, v in by_type.items() if k not in (domain.Subscribed.__name__, domain.CommandOk.__name__))
    return {"messages": data, "seconds": elapsed, "msg_per_s": data / elapsed, "seq_gaps": gaps, "bad": bad, **by_type}


async def measure_rest(port: int, seconds: float) -> dict[str, float]:
    await _wait_ready(f"http://127.0.0.1:{port}/trade-api/v2")
    pages = markets = 0
    async with KalshiRestClient(f"http://127.0.0.1:{port}/trade-api/v2") as rest:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            async for _ in rest.iter_markets(limit=100):
                markets += 1
            pages = rest.stats["requests"]
        elapsed = time.perf_counter() - t0
    return {"pages": pages, "markets": markets, "seconds": elapsed, "pages_per_s": pages / elapsed}


def run_against_simulator(measure, seconds: float, markets: int, speed: float, activity: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    with simulator_process(markets, speed, activity) as port:
        return asyncio.run(measure(port, seconds))  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    simulator_args(ap)
    args = ap.parse_args()
    ws = run_against_simulator(measure_ws, args.seconds, args.markets, args.speed, args.activity)
    # REST against a quiet exchange (real time, normal activity), so the figure is the request path itself.
    rest = run_against_simulator(measure_rest, args.seconds, 1000, 1.0, 1.0)
    print(f"WS:   {ws}")
    print(f"REST: {rest}")
    print(
        f"simulator -> KalshiWsClient -> domain objects: {ws['msg_per_s']:,.0f} msg/s "
        f"(seq gaps {ws['seq_gaps']}, bad frames {ws['bad']}); "
        f"REST: {rest['pages_per_s']:,.0f} pages/s of 100 markets ({rest['pages_per_s'] * 100:,.0f} markets/s)"
    )


if __name__ == "__main__":
    main()
