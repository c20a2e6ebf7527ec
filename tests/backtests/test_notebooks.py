"""The example notebooks run top to bottom against a fresh test database (DB_URL passed to the kernel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nbclient
import nbformat
import pytest

from tests.conftest import REPO_ROOT, create_migrated_database, drop_database

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
async def notebook_db(server_url: str) -> AsyncIterator[str]:
    url = await create_migrated_database(server_url)
    yield url
    await drop_database(server_url, url)


def test_there_are_example_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01_explore_markets.ipynb", "02_backtest_fade_overreaction.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, notebook_db: str, nba_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", notebook_db)
    monkeypatch.setenv("KA_NBA_DIR", str(nba_dir))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plots render"
