"""How many WebSocket messages/s the simulator emits to ONE plain ``websockets`` client.

The simulator runs in its own process (as ``kalshi-analytics simulate`` would), the client here subscribes to
ticker, trade, market_lifecycle_v2 and orderbook_delta on every open market and counts frames for a few
seconds, checking ``seq`` continuity per sid on the way.

    .venv/bin/python bench/sim_ws_emit.py [--seconds 5] [--markets 300] [--speed 600] [--activity 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import websockets

from bench.common import simulator_args, simulator_process


async def measure_plain_client(port: int, seconds: float) -> dict[str, float]:
    """Frames/s one plain client reads and ``json.loads`` (the reference the recorder is held to)."""
    base = f"http://127.0.0.1:{port}/trade-api/v2"
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(100):
            try:
                r = await http.get("/markets", params={"status": "open", "limit": 1000})
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        tickers = [m["ticker"] for m in r.json()["markets"]]
    async with websockets.connect(f"ws://127.0.0.1:{port}/trade-api/ws/v2", max_size=None, max_queue=None) as ws:
        await ws.send(
            json.dumps(
                {
                    "id": 1,
                    "cmd": "subscribe",
                    "params": {"channels": ["ticker", "trade", "market_lifecycle_v2"], "send_initial_snapshot": True},
                }
            )
        )
        await ws.send(
            json.dumps(
                {"id": 2, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": tickers}}
            )
        )
        last: dict[int, int] = {}
        gaps = 0
        n = 0
        by_type: dict[str, int] = {}
        await asyncio.sleep(0.5)  # warm-up: let the snapshot burst pass
        t0, cpu0 = time.perf_counter(), time.process_time()
        deadline = t0 + seconds
        while True:
            raw = await ws.recv()
            msg = json.loads(raw)
            sid, seq = msg.get("sid"), msg.get("seq")
            if seq is not None and sid is not None:
                if sid in last and seq != last[sid] + 1:
                    gaps += 1
                last[sid] = seq
            typ = msg.get("type", "?")
            by_type[typ] = by_type.get(typ, 0) + 1
            n += 1
            if (n & 1023) == 0 and time.perf_counter() >= deadline:
                break
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "messages": n,
        "seconds": elapsed,
        "msg_per_s": n / elapsed,
        "cpu_us_per_msg": cpu / n * 1e6,
        "seq_gaps": gaps,
        **by_type,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    simulator_args(ap)
    args = ap.parse_args()
    with simulator_process(args.markets, args.speed, args.activity) as port:
        result = asyncio.run(measure_plain_client(port, args.seconds))
    print(json.dumps(result, indent=2))
    print(f"simulator → one websockets client: {result['msg_per_s']:,.0f} msg/s")


if __name__ == "__main__":
    main()
