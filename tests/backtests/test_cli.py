"""``kalshi-analytics backtest …`` end to end in a subprocess: bad input is one line and exit ≠ 0, a run on no
data is one line and exit 3 with nothing stored, and the phases of a run show as it goes."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.recorder.rows import SnapshotRow
from tests.fixtures.app import market, write
from tests.test_cli import CLI, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor moves
NO_DB = {"DB_URL": "postgresql://u:p@127.0.0.1:9/x"}
T0 = datetime(2026, 2, 10, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nope"], "error: --strategy: unknown strategy 'nope' (known: buy_and_hold, fade_overreaction,"),
        (["-s", "fade_overreaction", "-p", "threshold=2"], "error: --param threshold: Input should be less"),
        (["-s", "fade_overreaction", "-p", "bogus=1"], "error: --param bogus: Extra inputs are not permitted"),
        (["-s", "momentum", "-p", "lookback"], "error: --param 'lookback': expected key=value"),
        (["-s", "momentum", "--start", "2026-03-01"], "error: --end (2026-02-01T00:00:00+00:00) must be after start"),
        (["-s", "momentum", "--end", "yesterday"], "error: --end: cannot read time 'yesterday': use ISO 8601"),
        (["-s", "momentum", "--start", "-1d", "--end", "-2d"], "error: --end (20"),
        (["-s", "momentum", "--capital", "-5"], "error: --capital: Input should be greater than 0"),
        (["-s", "momentum", "--ticker", ""], "error: --ticker: a ticker must not be empty"),
        (["-s", "momentum", "--series", "KX\x01"], "error: --series: series 'KX\\x01' contains a control character"),
        (["-s", "momentum", "--category", "x" * 201], "error: --category: category 'xxxxxxxxxxxxxxxxxxxx'… is longer"),
        (["-s", "momentum", "--fill-latency", "soon"], "error: --fill-latency: Input should be a valid number"),
        (["-s", "momentum", "--fill-latency", "-1"], "error: --fill-latency: Input should be greater than or equal"),
        (["-s", "momentum", "--unknown-size-cap", "0"], "error: --unknown-size-cap: Input should be greater than 0"),
    ],
)
def test_bad_input_is_one_line_and_a_failure(args: list[str], message: str) -> None:
    full = ["backtest", "run", "--start", "2026-01-01", "--end", "2026-02-01", *args]
    result = run_cli(*full, env=NO_DB)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        # The window of the issue: it once ended in a traceback ("year 10000 is out of range").
        ("0001-01-01", "9999-12-31", "error: --start: '0001-01-01' leaves the years 1-9999 in UTC"),
        ("0001-01-02", "9999-12-30", "error: --start must lie between 2000 and 2100"),
        ("2026-01-01", "9999-12-30T23:59:59-14:00", "error: --end: '9999-12-30T23:59:59-14:00' leaves the years"),
        ("2026-01-01", "253402300799", "error: --end must lie between 2000 and 2100"),  # Unix 9999-12-31T23:59:59
        ("-1d", "+2900000d", "error: --end must lie between 2000 and 2100"),
    ],
)
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_windows_beyond_the_calendar_are_one_line(command: str, start: str, end: str, message: str) -> None:
    grid = ["-g", "hold=1,2"] if command == "sweep" else []
    args = ["backtest", command, "-s", "fade_overreaction", *grid, "--start", start, "--end", end]
    result = run_cli(*args, env=NO_DB)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]


def test_run_reads_relative_windows(bt_database_url: str, tmp_path: Path) -> None:
    env = {"DB_URL": bt_database_url, "LOG_LEVEL": "WARNING", "KALSHI_ANALYTICS_DATA_DIR": str(tmp_path)}
    window = ["--start", "-2d", "--end", "now", "--ticker", "NONE-1", "--keep-empty"]
    ran = run_cli("backtest", "run", "-s", "buy_and_hold", *window, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "total_pnl" in ran.stdout


def test_help_lists_the_commands() -> None:
    result = run_cli("backtest", "--help")
    assert result.returncode == 0
    for cmd in ("run", "sweep", "import-candles", "worker", "strategies"):
        assert cmd in result.stdout


def test_import_run_and_sweep(bt_database_url: str, nba_dir: Path, tmp_path: Path) -> None:
    # the columnar cache lives in the data dir: keep it out of the user's
    env = {"DB_URL": bt_database_url, "LOG_LEVEL": "WARNING", "KALSHI_ANALYTICS_DATA_DIR": str(tmp_path)}
    imported = run_cli("backtest", "import-candles", str(nba_dir), env=env, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert "KXNBAGAME-25DEC13SASOKC-SAS" in imported.stdout
    again = run_cli("backtest", "import-candles", str(nba_dir), env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "nothing new: all 6 files were imported before" in again.stdout
    window = ["--start", "2025-01-01", "--end", "2026-01-01", "--series", "KXNBAGAME"]
    ran = run_cli("backtest", "run", "-s", "buy_and_hold", "-p", "size=10", *window, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "total_pnl" in ran.stdout
    assert "num_trades" in ran.stdout
    swept = run_cli(
        "backtest", "sweep", "-s", "fade_overreaction", "-g", "threshold=0.05,0.1", "-g", "hold=5,20",
        "--workers", "2", *window, env=env, timeout=180,
    )  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    assert "sweep fade_overreaction: 4 runs" in swept.stdout
    strategies = run_cli("backtest", "strategies")
    assert "favourite_longshot" in strategies.stdout


def test_a_sweep_grid_larger_than_the_limit_is_refused_before_anything_runs() -> None:
    grid = [
        "-g",
        "threshold=" + ",".join(f"0.0{i}" for i in range(1, 10)),
        "-g",
        "hold=" + ",".join(map(str, range(1, 200))),
    ]
    args = ["backtest", "sweep", "-s", "fade_overreaction", "--start", "2026-01-01", "--end", "2026-02-01", *grid]
    result = run_cli(*args, env={"DB_URL": "postgresql://u:p@127.0.0.1:9/x", "BACKTEST_SWEEP_MAX_RUNS": "1000"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: --grid: 1791 runs (9 × 199) is more than the limit of 1000 (BACKTEST_SWEEP_MAX_RUNS)"], (
        result.stderr
    )


def test_sweep_grids_expand_only_within_the_limit() -> None:
    from kalshi_analytics.backtests.service import grid_runs
    from kalshi_analytics.errors import InvalidInputError

    assert grid_runs({"a": [1, 2], "b": ["x"]}, max_runs=2) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    huge = {f"p{i}": list(range(100)) for i in range(10)}  # 10^20 runs: counted, never expanded
    with pytest.raises(InvalidInputError, match=r"100000000000000000000 runs") as err:
        grid_runs(huge, max_runs=1000, field="--grid")
    assert err.value.field == "--grid"


# ------------------------------------------------------------------------------------------------ no data
async def one_market(engine: AsyncEngine) -> str:
    """A market settled YES with two snapshots at T0 and T0 + 1 min."""
    t = f"KXBTCLI-{uuid.uuid4().hex[:8].upper()}"
    rows = [
        SnapshotRow(ticker=t, ts=T0 + timedelta(minutes=i), source="poll", received_at=T0, yes_bid=b, yes_ask=a)
        for i, (b, a) in enumerate([(D("0.40"), D("0.42")), (D("0.48"), D("0.50"))])
    ]
    await write(engine, market(t, series_ticker="KXBTCLI", status="finalized", result="yes"), *rows)
    return t


async def stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM backtest_results"))).scalar_one())


def cli_env(url: str, data_dir: Path) -> dict[str, str]:
    return {"DB_URL": url, "LOG_LEVEL": "WARNING", "KALSHI_ANALYTICS_DATA_DIR": str(data_dir)}


@pytest.mark.parametrize("command", ["run", "sweep"])
async def test_an_unknown_ticker_is_no_data_one_line_exit_3_and_nothing_stored(
    bt_engine: AsyncEngine, bt_database_url: str, tmp_path: Path, command: str
) -> None:
    known = await one_market(bt_engine)
    before = await stored(bt_engine)
    grid = ["-g", "hold=1,2"] if command == "sweep" else []
    args = ["backtest", command, "-s", "fade_overreaction", *grid, "--start", "2026-02-01", "--end", "2026-03-01"]
    ran = run_cli(*args, "--ticker", known, "--ticker", "NOPE", env=cli_env(bt_database_url, tmp_path))
    assert ran.returncode == 3, ran.stderr
    assert ran.stderr.strip().splitlines() == ["error: --ticker: no recorded market 'NOPE'"]
    assert ran.stdout == ""
    series = run_cli(*args, "--series", "KXNOSUCH", env=cli_env(bt_database_url, tmp_path))
    assert (series.returncode, series.stderr.strip()) == (3, "error: --series: no recorded market in series 'KXNOSUCH'")
    assert await stored(bt_engine) == before

    kept = run_cli(*args, "--ticker", "NOPE", "--keep-empty", env=cli_env(bt_database_url, tmp_path), timeout=120)
    assert kept.returncode == 0, kept.stderr
    assert await stored(bt_engine) == before + (2 if command == "sweep" else 1)
    if command == "run":
        assert "no snapshots in the window for the selected markets" in kept.stdout


async def test_a_window_without_snapshots_says_when_the_markets_have_some(
    bt_engine: AsyncEngine, bt_database_url: str, tmp_path: Path
) -> None:
    t = await one_market(bt_engine)
    before = await stored(bt_engine)
    window = ["--start", "2026-01-01", "--end", "2026-01-02T12:00Z"]
    ran = run_cli(
        "backtest", "run", "-s", "buy_and_hold", *window, "--ticker", t, env=cli_env(bt_database_url, tmp_path)
    )
    assert ran.returncode == 3, ran.stderr
    assert ran.stderr.strip().splitlines() == [
        "error: no snapshots between 2026-01-01T00:00:00Z and 2026-01-02T12:00:00Z in the 1 selected market; "
        "it holds snapshots from 2026-02-10T15:00:00Z to 2026-02-10T15:01:00Z"
    ]
    both = ["--series", "KXBTCLI", "--category", "nothing-like-it"]
    ran = run_cli("backtest", "run", "-s", "buy_and_hold", *window, *both, env=cli_env(bt_database_url, tmp_path))
    assert (ran.returncode, ran.stderr.strip()) == (
        3,
        "error: --category: no recorded market in category 'nothing-like-it'",
    )
    assert await stored(bt_engine) == before


@pytest.mark.parametrize("command", ["run", "sweep"])
async def test_fill_model_options_reach_every_stored_run(
    bt_engine: AsyncEngine, bt_database_url: str, tmp_path: Path, command: str
) -> None:
    t = f"KXBTCLI-{uuid.uuid4().hex[:8].upper()}"
    quotes = [(D("0.40"), D("0.42")), (D("0.48"), D("0.50")), (D("0.55"), D("0.57"))]  # no sizes recorded
    rows = [
        SnapshotRow(ticker=t, ts=T0 + timedelta(minutes=i), source="poll", received_at=T0, yes_bid=b, yes_ask=a)
        for i, (b, a) in enumerate(quotes)
    ]
    await write(bt_engine, market(t, series_ticker="KXBTCLI", status="finalized", result="yes"), *rows)
    grid = ["-g", "size=10,20", "--workers", "1"] if command == "sweep" else ["-p", "size=10"]
    fill = ["--fill-latency", "60", "--unknown-size-cap", "3", "--no-walk-book", "--no-trade-quotes"]
    args = ["backtest", command, "-s", "buy_and_hold", *grid, *fill, "--start", "2026-02-01", "--end", "2026-03-01"]
    ran = run_cli(*args, "--ticker", t, "-q", env=cli_env(bt_database_url, tmp_path), timeout=120)
    assert ran.returncode == 0, ran.stderr
    async with bt_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT r.market_filter AS config, r.metrics -> 'fill_model' AS fill_model, e.size, e.entry_ts, "
                    "e.entry_price FROM backtest_results r JOIN backtest_executions e ON e.backtest_id = r.id "
                    "WHERE r.market_filter -> 'tickers' ->> 0 = :t"
                ),
                {"t": t},
            )
        ).all()
    assert len(rows) == (2 if command == "sweep" else 1)
    for r in rows:
        assert {k: r.config[k] for k in ("fill_latency_seconds", "unknown_size_cap", "walk_book", "trade_quotes")} == {
            "fill_latency_seconds": 60.0,
            "unknown_size_cap": "3",
            "walk_book": False,
            "trade_quotes": False,
        }
        assert r.fill_model == {
            "name": "displayed_liquidity",
            "unknown_size_cap": "3",
            "latency_seconds": 60.0,
            "walks_book": False,
            "trade_quotes": False,
        }
        # Decided on the first snapshot, filled on the second (a minute later) at its ask, capped at 3.
        assert (r.size, r.entry_ts, r.entry_price) == (D(3), T0 + timedelta(minutes=1), D("0.50"))


# ----------------------------------------------------------------------------------------------- progress
def run_on_a_terminal(args: Sequence[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """Run the CLI with its stderr on a pseudo-terminal (as in a shell); returns (exit code, stdout, terminal)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_URL", "KALSHI_", "LOG_"))}
    full_env |= env | {"TERM": "xterm-256color", "COLUMNS": "120"}
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=slave, env=full_env, text=True)
        os.close(slave)
        screen = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        out, _ = proc.communicate(timeout=timeout)
    finally:
        os.close(master)
    return proc.returncode, out, ANSI.sub("", screen.decode(errors="replace"))


async def test_run_shows_load_simulate_persist(bt_engine: AsyncEngine, bt_database_url: str, tmp_path: Path) -> None:
    t = await one_market(bt_engine)
    args = ["backtest", "run", "-s", "buy_and_hold", "--start", "2026-02-01", "--end", "2026-03-01", "--ticker", t]
    env = cli_env(bt_database_url, tmp_path)

    code, out, screen = run_on_a_terminal(args, env)
    assert code == 0, screen
    assert "total_pnl" in out
    for phase, counts in (("load", "2/2 snapshots"), ("simulate", "2/2 snapshots"), ("persist", "1/1 executions")):
        assert phase in screen
        assert counts in screen, screen

    piped = run_cli(*args, env=env)  # not a terminal: one line per phase, on stderr
    assert piped.returncode == 0, piped.stderr
    lines = piped.stderr.strip().splitlines()
    assert [line.split(" in ")[0] for line in lines] == [
        "load: 2 snapshots",
        "simulate: 2 snapshots",
        "persist: 1 executions",
    ]
    assert all(line.endswith(" s") for line in lines)

    quiet = run_cli(*args, "--quiet", env=env)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert "total_pnl" in quiet.stdout


async def test_sweep_shows_runs_done_of_total_with_an_eta(
    bt_engine: AsyncEngine, bt_database_url: str, tmp_path: Path
) -> None:
    t = await one_market(bt_engine)
    args = ["backtest", "sweep", "-s", "fade_overreaction", "-g", "hold=1,2,3", "--workers", "1"]
    args += ["--start", "2026-02-01", "--end", "2026-03-01", "--ticker", t]
    env = cli_env(bt_database_url, tmp_path)

    code, out, screen = run_on_a_terminal(args, env)
    assert code == 0, screen
    assert "sweep fade_overreaction: 3 runs" in out
    assert "3/3 runs" in screen
    assert "ETA" in screen
    assert "load" in screen
    assert "persist" in screen

    piped = run_cli(*args, env=env, timeout=120)
    assert piped.returncode == 0, piped.stderr
    lines = piped.stderr.strip().splitlines()
    assert [line.split(" in ")[0] for line in lines] == ["load: 2 snapshots", "runs: 3 runs", "persist: 3 runs"]
    assert run_cli(*args, "-q", env=env, timeout=120).stderr == ""
