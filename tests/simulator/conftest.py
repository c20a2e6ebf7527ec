"""Shared helpers for the simulator tests: a running simulator, JSON over WebSocket, signed headers."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from websockets.asyncio.client import ClientConnection

from kalshi_analytics.simulator import Simulator, SimulatorConfig, run_simulator

START_TS = 1_800_000_000.0  # a fixed simulated start so tickers and timestamps are reproducible


def config(**kw: Any) -> SimulatorConfig:
    base: dict[str, Any] = {
        "port": 0,
        "seed": 11,
        "markets": 30,
        "speed": 30.0,
        "rate_limit": None,
        "start_ts": START_TS,
    }
    base.update(kw)
    return SimulatorConfig(**base)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(config()) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="session")
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10) as c:
        yield c


async def recv(ws: ClientConnection, wait: float = 3.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))  # type: ignore[no-any-return]


async def send(ws: ClientConnection, msg: dict[str, Any] | str) -> None:
    await ws.send(msg if isinstance(msg, str) else json.dumps(msg))


async def collect(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except TimeoutError:
            break
    return out


def signed_headers(key: rsa.RSAPrivateKey, key_id: str, method: str, path: str) -> dict[str, str]:
    ts = str(int(time.time() * 1000))
    sig = key.sign(
        f"{ts}{method}{path}".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": ts,
        "KALSHI-ACCESS-SIGNATURE": base64.b64encode(sig).decode(),
    }


def on_grid(price: Decimal, ranges: list[dict[str, str]]) -> bool:
    return any(
        Decimal(r["start"]) <= price <= Decimal(r["end"]) and (price - Decimal(r["start"])) % Decimal(r["step"]) == 0
        for r in ranges
    )
