"""``kalshi-analytics backtest …`` end to end in a subprocess: bad input is one line and exit ≠ 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import run_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "nope"], "error: unknown strategy 'nope' (known: buy_and_hold, fade_overreaction,"),
        (["-s", "fade_overreaction", "-p", "threshold=2"], "error: fade_overreaction: threshold: Input should be less"),
        (
            ["-s", "fade_overreaction", "-p", "bogus=1"],
            "error: fade_overreaction: bogus: Extra inputs are not permitted",
        ),
        (["-s", "momentum", "-p", "lookback"], "error: --param 'lookback': expected key=value"),
        (["-s", "momentum", "--start", "2026-03-01"], "error: end (2026-02-01T00:00:00+00:00) must be after start"),
        (["-s", "momentum", "--end", "yesterday"], "error: --end: cannot read time 'yesterday': use ISO 8601"),
        (["-s", "momentum", "--start", "-1d", "--end", "-2d"], "error: end (20"),
    ],
)
def test_bad_input_is_one_line_and_a_failure(args: list[str], message: str) -> None:
    full = ["backtest", "run", "--start", "2026-01-01", "--end", "2026-02-01", *args]
    result = run_cli(*full, env={"DB_URL": "postgresql://u:p@127.0.0.1:9/x"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]


def test_run_reads_relative_windows(bt_database_url: str, tmp_path: Path) -> None:
    env = {"DB_URL": bt_database_url, "LOG_LEVEL": "WARNING", "KALSHI_ANALYTICS_DATA_DIR": str(tmp_path)}
    window = ["--start", "-2d", "--end", "now", "--ticker", "NONE-1"]
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
