"""The example notebooks run top to bottom against a fresh test database (DB_URL passed to the kernel), and what
they show is checked against the candle files read independently: a table of labels instead of numbers fails.

The notebooks are committed without outputs; the test executes a copy in memory.
"""

from __future__ import annotations

import ast
import csv
from collections.abc import AsyncIterator
from decimal import Decimal as D
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

from tests.backtests.conftest import expected_game
from tests.conftest import REPO_ROOT, create_migrated_database, drop_database

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
async def notebook_db(server_url: str) -> AsyncIterator[str]:
    url = await create_migrated_database(server_url)
    yield url
    await drop_database(server_url, url)


def test_there_are_example_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_explore_markets.ipynb", "02_backtest_fade_overreaction.ipynb"]


def test_notebooks_are_committed_without_outputs() -> None:
    for path in NOTEBOOKS:
        cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in cells), path.name


# ------------------------------------------------------------------------------------------------ helpers
class Notebook:
    """An executed notebook; cells are found by a piece of their source."""

    def __init__(self, nb: Any) -> None:
        self.code = [c for c in nb.cells if c.cell_type == "code"]

    def cell(self, marker: str) -> Any:
        (found,) = [c for c in self.code if marker in c.source]
        return found

    def result(self, marker: str) -> dict[str, Any]:
        """The data of the cell's displayed value (its ``execute_result``)."""
        (out,) = [o for o in self.cell(marker).outputs if o.output_type == "execute_result"]
        return dict(out.data)

    def stdout(self, marker: str) -> str:
        return "".join(o.text for o in self.cell(marker).outputs if o.output_type == "stream" and o.name == "stdout")


def execute(path: Path, db_url: str, nba_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Notebook:
    monkeypatch.setenv("DB_URL", db_url)
    monkeypatch.setenv("KA_NBA_DIR", str(nba_dir))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises on a cell's error
    executed = Notebook(nb)
    assert all(c.execution_count for c in executed.code)
    assert not [o for c in executed.code for o in c.outputs if o.output_type == "error"]
    return executed


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_table(data: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """A displayed DataFrame (its text/html): the column names and, by index label, the row's cells."""
    parser = _TableParser()
    parser.feed(data["text/html"])
    header, *body = parser.rows
    return header[1:], {row[0]: row[1:] for row in body}


def assert_plot(nb: Notebook, marker: str) -> None:
    data = nb.result(marker)
    assert data.get("image/png"), f"no image from the cell with {marker!r}"
    assert "with 1 Axes" in data["text/plain"]


def games(nba_files: list[Path]) -> dict[str, dict[str, Any]]:
    """Per game, read from the CSV itself: traded minutes, prices in dollars, 10-cent moves over 5 minutes."""
    out = {}
    for path in nba_files:
        with path.open() as fh:
            rows = [r for r in csv.DictReader(fh) if r["close"]]
        closes = [D(r["close"]) / 100 for r in rows]
        out[rows[0]["ticker"]] = {
            "snapshots": len(closes),
            "first": closes[0],
            "last": closes[-1],
            "high": max(closes),
            "low": min(closes),
            "moves_10c_5min": sum(abs(b - a) >= D("0.10") for a, b in zip(closes, closes[5:], strict=False)),
            "result": "yes" if closes[-1] >= D("0.5") else "no",
        }
    return out


# ------------------------------------------------------------------------------------------------ notebooks
def test_explore_notebook_shows_the_games(
    notebook_db: str, nba_dir: Path, nba_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = execute(REPO_ROOT / "notebooks" / "01_explore_markets.ipynb", notebook_db, nba_dir, monkeypatch)
    expected = games(nba_files)
    assert len(expected) == 6

    columns, rows = html_table(nb.result("research.import_candles("))
    assert columns == ["ticker", "snapshots", "first_close", "last_close", "result"]
    imported = {r[0]: (int(r[1]), D(r[2]), D(r[3]), r[4]) for r in rows.values()}
    assert imported == {t: (g["snapshots"], g["first"], g["last"], g["result"]) for t, g in expected.items()}

    columns, rows = html_table(nb.result("research.load_markets("))
    assert columns[:2] == ["ticker", "event_ticker"]
    result_at = columns.index("result")
    assert {r[0]: r[result_at] for r in rows.values()} == {t: g["result"] for t, g in expected.items()}

    total = sum(g["snapshots"] for g in expected.values())
    assert nb.stdout("research.load_snapshots(") == f"{total} snapshots\n"

    # The per-game summary: one row per game, labelled by ticker, of numbers that agree with the CSVs.
    columns, rows = html_table(nb.result("def summary("))
    assert columns == ["snapshots", "first", "last", "high", "low", "moves_10c_5min"]
    assert set(rows) == set(expected)
    for ticker, cells in rows.items():
        want = expected[ticker]
        assert int(cells[0]) == want["snapshots"], ticker
        for name, cell in zip(columns[1:5], cells[1:5], strict=True):
            assert float(cell) == pytest.approx(float(want[name]), abs=1e-9), (ticker, name)
        assert int(cells[5]) == want["moves_10c_5min"], ticker
    assert sum(int(cells[5]) for cells in rows.values()) > 0

    assert_plot(nb, "ax.legend(")


def test_backtest_notebook_shows_the_strategy_beside_buy_and_hold(
    notebook_db: str, nba_dir: Path, nba_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = execute(REPO_ROOT / "notebooks" / "02_backtest_fade_overreaction.ipynb", notebook_db, nba_dir, monkeypatch)
    expected = {t: (ask, fee, pnl) for t, ask, fee, pnl in (expected_game(p, 10) for p in nba_files)}

    metrics = ast.literal_eval(nb.result("result = research.run_backtest(")["text/plain"])
    names = ["total_pnl", "num_trades", "fees_paid", "win_rate", "sharpe", "max_drawdown", "brier_score"]
    assert list(metrics) == names
    assert metrics["num_trades"] > 0
    assert D(metrics["fees_paid"]) > 0
    assert 0 <= metrics["win_rate"] <= 1

    columns, rows = html_table(nb.result("result.executions["))
    assert columns == ["ticker", "side", "size", "entry_ts", "entry_price", "exit_price", "exit_reason", "fees", "pnl"]
    assert len(rows) == min(10, metrics["num_trades"])
    for cells in rows.values():
        assert cells[0] in expected
        assert cells[1] in ("yes", "no")
        assert float(cells[2]) == 10
        assert 0 < float(cells[4]) < 1
        assert cells[6] in ("signal", "settlement")

    assert_plot(nb, "research.plot_equity(")
    assert_plot(nb, "research.plot_calibration(")

    # The baseline is buy-and-hold: each game's P&L to the cent as the CSV says.
    columns, rows = html_table(nb.result("baseline = research.run_backtest("))
    assert columns == ["ticker", "entry_price", "exit_price", "fees", "pnl"]
    shown = {r[0]: (D(r[1]), D(r[3]), D(r[4])) for r in rows.values()}
    assert shown == expected

    columns, rows = html_table(nb.result("pd.DataFrame({"))
    assert columns == ["fade_overreaction", "buy_and_hold"]
    assert list(rows) == ["total_pnl", "num_trades", "fees_paid", "win_rate"]
    assert D(rows["total_pnl"][1]) == sum(pnl for _, _, pnl in expected.values())
    assert D(rows["fees_paid"][1]) == sum(fee for _, fee, _ in expected.values())
    assert int(rows["num_trades"][1]) == len(expected)
    assert (D(rows["total_pnl"][0]), int(rows["num_trades"][0])) == (D(metrics["total_pnl"]), metrics["num_trades"])
