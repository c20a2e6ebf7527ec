"""The soak of issue 11, bounded: every failure at once, nothing lost (bench/soak.py; 300 s here, 600 s there)."""

from __future__ import annotations

import os
import shutil

import pytest
from bench.soak import run_soak

from tests.conftest import make_pg_dir

SECONDS = float(os.environ.get("KA_SOAK_SECONDS", "300"))


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 900)
async def test_nothing_is_lost_through_kills_freezes_outages_and_closes() -> None:
    root = make_pg_dir()
    try:
        figures = await run_soak(SECONDS, root)
    except BaseException:
        print(f"soak logs kept in {root}")
        raise
    assert figures.failures() == [], figures
    assert figures.trades_expected > 100, "the run traded"
    assert figures.takeover_after_kill_seconds is not None
    shutil.rmtree(root, ignore_errors=True)
