"""Simulated and real data never mix: one embedded database per KALSHI_ENV, and a restarted simulator's old
markets do not stay "active"."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from kalshi_analytics import research
from kalshi_analytics.db.embedded import ENV_MARK, start_embedded, stop_embedded
from kalshi_analytics.db.engine import libpq_url
from tests.conftest import SHARED_DATA, free_port, require_shared_data

CLI = [sys.executable, "-m", "kalshi_analytics"]
OPEN = ("initialized", "inactive", "active")


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_", "API_", "SIM_"))}
    env.update(
        KALSHI_ANALYTICS_DATA_DIR=str(data_dir), SIM_PORT=str(free_port()), API_PORT=str(free_port()), SIM_MARKETS="5"
    )
    env.update(extra)
    return env


def up(env: dict[str, str], seconds: float = 3) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "up", "--metrics-port", "0", "--duration", str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def listed_by_simulator(env: dict[str, str], proc: subprocess.Popen[str]) -> set[str]:
    """The open markets the running simulator of ``proc`` lists."""
    url = f"http://127.0.0.1:{env['SIM_PORT']}/trade-api/v2/markets"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            return {m["ticker"] for m in httpx.get(url, params={"status": "open"}, timeout=2).json()["markets"]}
        time.sleep(0.2)
    pytest.fail("the simulator of `up` never answered")


async def stored_statuses(url: str) -> dict[str, str]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        return {r["ticker"]: r["status"] for r in await conn.fetch("SELECT ticker, status FROM markets")}
    finally:
        await conn.close()


def test_three_restarts_leave_no_market_active_that_the_simulator_no_longer_lists(pg_dir: Path) -> None:
    pgdata = pg_dir / "pgdata"
    try:
        # Each start is a new universe (another seed here, another start minute in real use: new tickers).
        for seed in ("1", "2"):
            finish(up(cli_env(pg_dir, SIM_SEED=seed)))
        env = cli_env(pg_dir, SIM_SEED="3")
        last = up(env)
        listed = listed_by_simulator(env, last)
        out = finish(last)
        assert "environment: sim" in out
        sim_db = start_embedded(pgdata, "kalshi_sim", "sim").url
        statuses = asyncio.run(stored_statuses(sim_db))
        still_open = {t for t, s in statuses.items() if s in OPEN}
        earlier = set(statuses) - listed
        assert listed
        assert still_open <= listed, f"active but gone: {sorted(still_open - listed)}"
        assert earlier, "the first two runs recorded markets of their own"
        assert {statuses[t] for t in earlier} == {"closed"}
    finally:
        stop_embedded(pgdata)


def test_real_history_in_a_notebook_sees_no_simulated_market(pg_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nba_files = sorted(require_shared_data(SHARED_DATA / "nba_candles").glob("*.csv"))[:2]
    pgdata = pg_dir / "pgdata"
    try:
        out = finish(up(cli_env(pg_dir)))
        assert "environment: sim" in out
        assert "/kalshi_sim" in out
        status = subprocess.run(
            [*CLI, "db", "status"], env=cli_env(pg_dir, KALSHI_ENV="prod"), capture_output=True, text=True, check=True
        )
        assert "environment: prod" in status.stdout
        assert "kalshi_sim" not in status.stdout

        # The notebook: no DB_URL, no KALSHI_ENV; it imports real NBA candles and reads them back.
        for name in list(os.environ):
            if name.startswith(("DB_URL", "KALSHI_")):
                monkeypatch.delenv(name)
        monkeypatch.setenv("KALSHI_ANALYTICS_DATA_DIR", str(pg_dir))
        research.import_candles(nba_files)
        real = set(research.load_markets()["ticker"])
        simulated = set(research.load_markets(url=start_embedded(pgdata, "kalshi_sim", "sim").url)["ticker"])
        assert real, "the NBA markets were imported"
        assert simulated, "the simulator's markets were recorded (into their own database)"
        assert not real & simulated
        assert all(t.startswith("KXNBAGAME") for t in real), sorted(real)
    finally:
        stop_embedded(pgdata)


def _psql(pgdata: Path, database: str, sql: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    uri = start_embedded(pgdata, database).url
    psql = [str(POSTGRES_BIN_PATH / "psql"), uri, "-X", "-qtA", "-c", sql]
    return subprocess.run(psql, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("held", ["simulated", "real"])
def test_a_kalshi_database_from_before_environments_is_settled_once(pg_dir: Path, held: str) -> None:
    pgdata = pg_dir / "pgdata"
    try:
        start_embedded(pgdata, "kalshi")  # as every version before this one made it: no environment mark
        rules = "Simulated market: outcomes are drawn by the simulator." if held == "simulated" else "Real rules."
        _psql(
            pgdata,
            "kalshi",
            f"""CREATE TABLE markets (ticker text, raw jsonb);
            INSERT INTO markets VALUES ('KXNBAGAME-X', '{{"rules_secondary": "{rules}"}}')""",
        )

        sim = start_embedded(pgdata, "kalshi_sim", "sim")
        prod = start_embedded(pgdata, "kalshi", "prod")

        marks = dict(
            line.split("|", 1)
            for line in _psql(
                pgdata, "postgres", "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            ).splitlines()
        )
        assert marks["kalshi"] == f"{ENV_MARK}prod"
        assert marks["kalshi_sim"] == f"{ENV_MARK}sim"
        prod_rows = _psql(pgdata, "kalshi", "SELECT count(*) FROM pg_tables WHERE tablename = 'markets'")
        if held == "simulated":
            assert sim.notice
            assert "is now 'kalshi_sim'" in sim.notice
            assert _psql(pgdata, "kalshi_sim", "SELECT ticker FROM markets") == "KXNBAGAME-X"
            assert prod_rows == "0", "prod starts empty"
        else:
            assert sim.notice is None
            assert prod_rows == "1", "a kalshi database without simulated markets stays the prod one"
        assert prod.notice is None, "settled once"
    finally:
        stop_embedded(pgdata)
