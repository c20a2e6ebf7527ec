"""The simulator's clock is wall time at speed 1: backpressure delays events but never loses time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import websockets

from kalshi_analytics.simulator import run_simulator
from tests.conftest import wait_until
from tests.simulator.conftest import config, send

HELD_SECONDS = 3.0


async def test_clock_catches_up_with_wall_time_after_backpressure() -> None:
    cfg = config(start_ts=None, speed=1.0, markets=30, activity=20.0, backpressure_frames=50, max_events_per_step=200)
    async with run_simulator(cfg) as sim:
        await wait_until(lambda: abs(time.time() - sim.model.now) < 1.0, "the clock to start on wall time")
        tickers = [m.ticker for m in sim.model.market_list if m.status == "active"]
        # Small socket buffers on both ends, so a consumer that stops reading soon fills the simulator's queue.
        sock = socket.create_connection(("127.0.0.1", sim.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        async with websockets.connect(sim.ws_url, sock=sock, max_queue=1, max_size=None) as ws:
            transports = [getattr(c.protocol, "transport", None) for c in sim.hub.connections.values()]
            for transport in transports:
                if transport is not None:
                    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
                    transport.set_write_buffer_limits(high=4096)
            await send(
                ws,
                {
                    "id": 1,
                    "cmd": "subscribe",
                    "params": {"channels": ["orderbook_delta", "ticker", "trade"], "market_tickers": tickers},
                },
            )
            await wait_until(
                lambda: sim.hub.max_queue() > cfg.backpressure_frames, "the consumer to apply backpressure"
            )
            await asyncio.sleep(HELD_SECONDS)  # the consumer stays blocked: this is the backpressure being tested
            behind_while_held = time.time() - sim.model.now
            assert behind_while_held > 1.0, "backpressure must hold the model back (else the test proves nothing)"

            last_ts_ms: list[int] = []

            async def read() -> None:
                async for raw in ws:
                    msg = json.loads(raw)
                    ts_ms = msg.get("msg", {}).get("ts_ms") if isinstance(msg.get("msg"), dict) else None
                    if ts_ms is not None:
                        last_ts_ms.append(ts_ms)

            released_at = time.time()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            for transport in transports:  # a fast consumer again
                if transport is not None:
                    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
                    transport.set_write_buffer_limits(high=1 << 20)
            reader = asyncio.create_task(read())
            try:
                await wait_until(
                    lambda: bool(last_ts_ms) and abs(time.time() - sim.model.now) < 1.0,
                    "frames to flow and the clock to catch up with wall time",
                    seconds=60,
                )
                behind_after = time.time() - sim.model.now
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    print(f"behind while held: {behind_while_held:.1f} s, after it cleared: {behind_after:.2f} s")
    assert abs(behind_after) < 1.0
    assert last_ts_ms, "frames flowed again"
    # Events delivered late keep their own time (when they happened), not the moment they were sent.
    assert min(last_ts_ms) / 1000 < released_at - 1.0


async def test_a_fixed_start_keeps_the_models_own_clock_in_state_and_messages() -> None:
    cfg = config(speed=60.0)
    assert cfg.start_ts is not None
    async with run_simulator(cfg) as sim:
        await wait_until(lambda: sim.model.now > cfg.start_ts + 30, "a simulated half minute")  # type: ignore[operator]
        sim.pause()
        try:
            assert sim.state()["now_ts"] == sim.model.now
            assert abs(sim.model.now - time.time()) > 3600  # its own clock, not wall time
        finally:
            sim.resume()
