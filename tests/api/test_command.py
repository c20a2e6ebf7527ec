"""``kalshi-analytics api``: the real command, two uvicorn workers, on the test database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.app import serve_api
from kalshi_analytics.config import SettingsError, load_settings
from tests.conftest import free_port
from tests.fixtures.app import make_settings


def test_api_command_serves_with_two_workers(database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "DB_URL": database_url, "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalshi_analytics", "api", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/markets", params={"limit": 1}, timeout=5)
        assert r.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/docs", timeout=5).status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    # The banner gives the URLs that answer.
    assert f"docs:       http://127.0.0.1:{port}/api/v1/docs" in out.decode()


def test_api_workers_share_connections_evenly_and_stop_on_sigterm(database_url: str) -> None:
    """Each worker listens on a socket of its own (SO_REUSEPORT): 60 connections land on both, neither takes
    nearly all (uvicorn's shared socket gave one worker 91 of 122 under the bench's load); SIGTERM stops all."""
    import psutil

    port = free_port()
    env = {**os.environ, "DB_URL": database_url, "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalshi_analytics", "api", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    clients: list[httpx.Client] = []
    try:
        _wait_for_health(base, proc)
        workers = psutil.Process(proc.pid).children()
        assert len([w for w in workers if w.name() != "resource_tracker"]) >= 2
        for _ in range(60):  # 60 kept-alive connections, one request each
            c = httpx.Client(base_url=base, timeout=5)
            assert c.get("/api/v1/health").status_code == 200
            clients.append(c)
        per_worker = []
        for w in workers:
            with contextlib.suppress(psutil.Error):
                held = [k for k in w.net_connections("tcp") if k.status == "ESTABLISHED" and k.laddr.port == port]
                per_worker.append(len(held))
        per_worker = sorted(n for n in per_worker if n)
        assert len(per_worker) == 2, per_worker
        assert sum(per_worker) == 60
        assert per_worker[0] >= 15, per_worker  # an even spread is 30/30; the hash varies, a monopoly does not
    finally:
        for c in clients:
            c.close()
        proc.terminate()
        out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err.decode()
    assert "2 workers" in out.decode()


def _spoofing_clients(base: str, same: bool = False) -> list[int]:
    """Six reads from loopback, each claiming another client address (or all the same one)."""
    with httpx.Client(base_url=base, timeout=5) as client:
        return [
            client.get(
                "/api/v1/markets/NOPE-XFF", headers={"X-Forwarded-For": f"203.0.113.{1 if same else i}"}
            ).status_code
            for i in range(6)
        ]


def _wait_for_health(base: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc is None or proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API did not come up"
        time.sleep(0.1)


@pytest.mark.parametrize("trusted", [False, True])
def test_api_command_trusts_proxy_headers_only_from_forwarded_allow_ips(database_url: str, trusted: bool) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "FORWARDED_ALLOW_IPS"},
        "DB_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "API_RATE_LIMIT_ENABLED": "true",
        "API_RATE_READ": "3/minute",
        "API_BACKTEST_WORKER": "false",
    }
    if trusted:
        env["FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kalshi_analytics", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_health(base, proc)
        if trusted:  # six clients behind a proxy we trust: each has its own budget, but not more
            assert _spoofing_clients(base) == [404] * 6
            assert _spoofing_clients(base, same=True)[3:] == [429] * 3
        else:  # the header is ignored: one client, spending one budget
            assert _spoofing_clients(base) == [404] * 3 + [429] * 3
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.parametrize("trusted", [False, True])
async def test_up_trusts_proxy_headers_only_from_forwarded_allow_ips(
    database_url: str, engine: AsyncEngine, trusted: bool
) -> None:
    settings = make_settings(
        database_url,
        api_rate_limit_enabled=True,
        api_rate_read="3/minute",
        api_backtest_worker=False,
        forwarded_allow_ips=["127.0.0.1"] if trusted else [],
    )
    port = free_port()
    task = asyncio.create_task(serve_api(settings, engine, "127.0.0.1", port))
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(_wait_for_health, base)
        codes = await asyncio.to_thread(_spoofing_clients, base)
        assert codes == ([404] * 6 if trusted else [404] * 3 + [429] * 3)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_forwarded_allow_ips_names_addresses_or_networks() -> None:
    s = load_settings(_env_file=None, forwarded_allow_ips="10.0.0.1, 10.1.0.0/16,::1")
    assert s.forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16", "::1"]
    assert load_settings(_env_file=None).forwarded_allow_ips == []
    assert load_settings(_env_file=None, forwarded_allow_ips="*").forwarded_allow_ips == ["*"]
    with pytest.raises(SettingsError, match=r"FORWARDED_ALLOW_IPS: .*'proxy\.local'"):
        load_settings(_env_file=None, forwarded_allow_ips="10.0.0.1,proxy.local")


def test_bad_rate_limit_setting_is_one_line() -> None:
    with pytest.raises(SettingsError, match="API_RATE_READ: must look like 1200/minute"):
        load_settings(_env_file=None, api_rate_read="lots")


async def test_serve_api_runs_in_this_loop_and_stops_on_cancel(database_url: str, engine: AsyncEngine) -> None:
    port = free_port()
    task = asyncio.create_task(serve_api(make_settings(database_url), engine, "127.0.0.1", port))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
        for _ in range(200):
            try:
                if (await client.get("/api/v1/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        assert (await client.get("/api/v1/markets", params={"limit": 1})).status_code == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The engine belongs to the caller: still usable.
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1


def _open_stream(base: str) -> tuple[httpx.Client, Iterator[str]]:
    """An SSE client following every paper event (no tickers needed), its response open past ``ready``; returns
    the client and the rest of its lines."""
    client = httpx.Client(base_url=base, timeout=httpx.Timeout(5, read=30))
    response = client.send(
        client.build_request("GET", "/api/v1/stream", params={"kinds": "paper_session"}), stream=True
    )
    assert response.status_code == 200
    lines = response.iter_lines()
    for line in lines:
        if line == "event: ready":
            break
    return client, lines


def _read_to_end(lines: Iterator[str]) -> str:
    try:
        return "\n".join(lines)
    except httpx.HTTPError as exc:
        return f"<{type(exc).__name__}>"


@pytest.mark.parametrize("workers", [1, 2])
def test_open_streams_do_not_hold_up_a_stop(database_url: str, workers: int) -> None:
    """SIGTERM with a browser's live stream open: the stream is ended (the browser reconnects with Last-Event-ID
    to whichever server answers next) and the process stops within seconds, not when the client leaves."""
    port = free_port()
    env = {**os.environ, "DB_URL": database_url, "LOG_LEVEL": "WARNING", "API_BACKTEST_WORKER": "false"}
    argv = [sys.executable, "-m", "kalshi_analytics", "api", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base, proc)
        streams = [_open_stream(base) for _ in range(3)]
        proc.terminate()
        started = time.monotonic()
        _, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - started
        for client, response in streams:
            _read_to_end(response)  # ends: the server closed it
            client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # One worker is uvicorn's own server (ApiServer keeps it from re-raising the signal it stopped on).
    assert proc.returncode == 0, err.decode()[-2000:]  # a stop asked for is a clean exit, not death by signal
    assert "Traceback" not in err.decode()
    assert stopped_in < 5, f"stopped {stopped_in:.1f} s after SIGTERM"


async def test_up_stops_with_a_stream_open(database_url: str, engine: AsyncEngine) -> None:
    port = free_port()
    task = asyncio.create_task(serve_api(make_settings(database_url), engine, "127.0.0.1", port))
    base = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(_wait_for_health, base)
    client, response = await asyncio.to_thread(_open_stream, base)
    try:
        reading = asyncio.create_task(asyncio.to_thread(_read_to_end, response))
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        assert time.monotonic() - started < 5
        await asyncio.wait_for(reading, 10)
    finally:
        client.close()
