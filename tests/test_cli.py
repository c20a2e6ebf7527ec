from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kalshi_analytics import __version__
from kalshi_analytics.db import migrations
from tests.conftest import free_port

CLI = [sys.executable, "-m", "kalshi_analytics"]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_"))}
    full_env.update(env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full_env, timeout=timeout, check=False)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["db"],
        ["db", "upgrade"],
        ["db", "status"],
        ["up"],
        ["backtest", "run"],
        ["recorder"],
        ["simulate"],
        ["live"],
        ["live", "start"],
        ["live", "status"],
    ],
)
def test_help_is_useful_at_every_level(args: list[str]) -> None:
    result = run_cli(*args, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    assert len(result.stdout.strip().splitlines()) > 4
    assert "<bool>" not in result.stdout, "a flag takes no value"


def test_top_level_help_promises_only_what_exists_and_up_names_the_api() -> None:
    top = run_cli("--help").stdout
    assert "live" in top
    assert "paper trading" in top.lower()
    assert "dashboard" not in top.lower()
    assert "API" in run_cli("up", "--help").stdout
    assert "live runner" in run_cli("up", "--help").stdout


def test_version_prints_the_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_unknown_revision_is_one_line(fresh_database_url: str) -> None:
    result = run_cli("db", "upgrade", "nope", env={"DB_URL": fresh_database_url})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: revision 'nope': Can't locate revision"), lines[0]


def test_a_busy_port_stops_up_with_one_line_naming_it(fresh_database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"DB_URL": fresh_database_url, "SIM_PORT": str(port), "API_PORT": str(free_port())}
        result = run_cli("up", "--metrics-port", "0", "--duration", "5", env=env, timeout=60)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: simulator: port {port} on 127.0.0.1 is already in use (another `kalshi-analytics up`?); "
        "stop that process or choose another port with SIM_PORT"
    ]
    assert "Traceback" not in result.stderr


def test_closed_port_fails_fast_with_one_masked_line() -> None:
    started = time.monotonic()
    result = run_cli("db", "status", env={"DB_URL": "postgresql://kalshi:hunter2@127.0.0.1:9/kalshi"})
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < 10
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot connect to postgresql://kalshi:***@127.0.0.1:9/kalshi")
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_invalid_setting_stops_at_start_with_one_line() -> None:
    result = run_cli("db", "status", env={"POLL_INTERVAL_SECONDS": "0"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: invalid setting POLL_INTERVAL_SECONDS: Input should be greater than 0 (got '0')"
    )


def test_up_creates_then_reuses_the_embedded_database(pg_dir: Path) -> None:
    tmp_path = pg_dir
    env = {"KALSHI_ANALYTICS_DATA_DIR": str(tmp_path), "SIM_PORT": str(free_port()), "API_PORT": str(free_port())}
    try:
        # The whole stack: embedded database, simulator, API, recorder; then Ctrl-C.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_", "API_"))}
        full_env.update(env)
        proc = subprocess.Popen(
            [*CLI, "up", "--metrics-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        api = f"http://127.0.0.1:{env['API_PORT']}/api/v1"
        markets: list[object] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not markets and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                markets = httpx.get(f"{api}/markets", timeout=2).json()["items"]
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: everything stops, the recorder flushes what it holds
        out, err = proc.communicate(timeout=120)
        first = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        assert markets, "the API served the markets the recorder wrote"
        assert first.returncode == 0, first.stderr
        assert f"embedded PostgreSQL created in {tmp_path / 'pgdata'}" in first.stdout
        assert "(at head)" in first.stdout
        assert "server:     PostgreSQL" in first.stdout
        assert f"simulator:  http://127.0.0.1:{env['SIM_PORT']}/trade-api/v2" in first.stdout
        assert "metrics:    http://127.0.0.1:" in first.stdout
        assert f"api:        {api}" in first.stdout
        assert f"docs:       {api}/docs  (ReDoc {api}/redoc)" in first.stdout
        assert "dashboard:  " in first.stdout  # its URL when built, else how to get it
        assert "kalshi-analytics gaps" in first.stdout
        assert "recorder_recording" in first.stderr
        assert "recorder_stopping" in first.stderr, "Ctrl-C is a clean stop, not a cancellation"
        assert "sink_closed_with_pending_items" not in first.stderr
        assert "Started server process" not in first.stderr, "embedded servers leave announcing to `up`"
        assert first.stderr.count("embedded_postgres_starting") == 1
        assert first.stdout.strip().endswith("stopped\nembedded PostgreSQL stopped"), first.stdout
        assert not (tmp_path / "pgdata" / "postmaster.pid").exists(), "up stops the server it started"

        second = run_cli("up", "--check", env=env, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "embedded PostgreSQL reused" in second.stdout
        assert (tmp_path / "pgdata" / "postmaster.pid").exists(), "--check prepares the server and leaves it up"

        third = run_cli("up", "--metrics-port", "0", "--duration", "1", env=env, timeout=120)
        assert third.returncode == 0, third.stderr
        assert "embedded PostgreSQL stopped" not in third.stdout
        assert (tmp_path / "pgdata" / "postmaster.pid").exists(), "a server running before up keeps running"

        status = run_cli("db", "status", env=env)
        assert status.returncode == 0
        assert "kind:       embedded (pgserver)" in status.stdout
    finally:
        stop = run_cli("db", "stop", env=env)
        assert stop.returncode == 0


def test_db_commands_on_an_external_server(fresh_database_url: str) -> None:
    env = {"DB_URL": fresh_database_url}
    up = run_cli("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    assert f"migrated to {migrations.head_revision()}" in up.stdout
    down = run_cli("db", "downgrade", "base", env=env)
    assert down.returncode == 0, down.stderr
    assert "now at base (empty)" in down.stdout
    status = run_cli("db", "status", env=env)
    assert f"migrations: none (behind head {migrations.head_revision()}" in status.stdout
    assert "kind:       external (DB_URL)" in status.stdout
