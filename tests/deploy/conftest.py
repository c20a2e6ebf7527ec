"""Fixtures of the deployment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture
def dashboard_build(tmp_path: Path) -> Path:
    """The dashboard's build as the image holds it: the real one when built, else a stand-in page."""
    real = REPO_ROOT / "frontend" / "dist"
    if (real / "index.html").is_file():
        return real
    stand_in = tmp_path / "dashboard"
    stand_in.mkdir()
    (stand_in / "index.html").write_text("<!doctype html><title>Kalshi Analytics</title><div id=root></div>")
    return stand_in
