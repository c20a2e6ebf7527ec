"""``kalshi-analytics live …`` in a subprocess: bad input is one line and exit 1 with nothing stored; start, list,
status, stop (twice: the second is refused) and compare on a session as a user types them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.app import market, ticker, write
from tests.test_cli import run_cli


def _env(url: str, tmp: Path) -> dict[str, str]:
    return {"DB_URL": url, "LOG_LEVEL": "WARNING", "KALSHI_ANALYTICS_DATA_DIR": str(tmp)}


async def _count(engine: AsyncEngine) -> Any:
    async with engine.connect() as c:
        return (await c.execute(text("SELECT count(*) FROM paper_sessions"))).scalar_one()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nope", "--ticker", "X"], "error: --strategy: unknown strategy 'nope' (known:"),
        (["-s", "fade_overreaction", "-p", "threshold=2", "--ticker", "X"], "error: --param threshold: Input should"),
        (["-s", "momentum", "-p", "bogus=1", "--ticker", "X"], "error: --param bogus: Extra inputs are not permitted"),
        (["-s", "momentum"], "error: --ticker/--series/--event/--category: choose the markets to trade"),
        (["-s", "momentum", "--ticker", "NOPE-1"], "error: --ticker/--series/--event/--category: no recorded market"),
        (["-s", "momentum", "--ticker", "X", "--capital", "0"], "error: --capital: "),
        (["-s", "momentum", "--ticker", "X", "--capital", "-5"], "error: --capital: "),
        (["-s", "momentum", "--ticker", "X", "--capital", "lots"], "error: --capital: 'lots' is not a number"),
        (["-s", "momentum", "--ticker", "X", "--restart-policy", "maybe"], "error: --restart-policy: "),
    ],
)
async def test_bad_input_is_one_line_and_stores_nothing(
    own_db: tuple[str, AsyncEngine], tmp_path: Path, args: list[str], message: str
) -> None:
    url, engine = own_db
    result = run_cli("live", "start", *args, env=_env(url, tmp_path))
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]
    assert await _count(engine) == 0


async def test_start_list_status_stop_compare(own_db: tuple[str, AsyncEngine], tmp_path: Path) -> None:
    url, engine = own_db
    env = _env(url, tmp_path)
    t = ticker("KXCLI")
    await write(engine, market(t))
    started = run_cli("live", "start", "-s", "momentum", "--ticker", t, "--capital", "500", env=env)
    assert started.returncode == 0, started.stderr
    assert "started: momentum v" in started.stdout
    # No backtest of it was ever run: the seed's gate is not met, and the user is told (it does not forbid).
    assert "warning: no finished backtest of 'momentum'" in started.stderr
    async with engine.connect() as c:
        sid = str((await c.execute(text("SELECT id FROM paper_sessions"))).scalar_one())

    listed = run_cli("live", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert sid[:8] in listed.stdout
    assert "running" in listed.stdout

    status = run_cli("live", "status", sid[:8], "--once", env=env)
    assert status.returncode == 0, status.stderr
    assert "500" in status.stdout  # the equity of a session that has not traded
    assert "positions" in status.stdout

    compared = run_cli("live", "compare", sid, env=env, timeout=120)
    assert compared.returncode == 0, compared.stderr
    assert "no difference" in compared.stdout

    stopped = run_cli("live", "stop", sid, env=env)
    assert stopped.returncode == 0, stopped.stderr
    again = run_cli("live", "stop", sid, env=env)
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: paper session {sid} is already stopped"
    unknown = run_cli("live", "status", "ffffffff", "--once", env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: SESSION: no session(s) start with 'ffffffff'"
