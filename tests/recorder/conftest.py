"""Fixtures of the recorder's end-to-end tests: a database of their own (they commit for real)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kalshi_analytics.config import Settings, load_settings
from kalshi_analytics.recorder.poll import Selection
from kalshi_analytics.recorder.service import RecorderConfig
from kalshi_analytics.simulator.server import Simulator
from tests.conftest import create_migrated_database, drop_database


@pytest.fixture
async def recorder_db_url(server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database (the recorder commits, so it cannot share the rolled-back session database)."""
    url = await create_migrated_database(server_url)
    yield url
    await drop_database(server_url, url)


def sim_settings(sim: Simulator) -> Settings:
    return load_settings(kalshi_api_base=sim.base_url, kalshi_ws_url=sim.ws_url, kalshi_rate_limit_rps=2000)


def fast_config(tmp: Path, **kw: object) -> RecorderConfig:
    """Short intervals for tests; a lock key of the test's own."""
    opts: dict[str, object] = {
        "selection": Selection(),
        "poll_interval": 1.0,
        "book_interval": 1.0,
        "sweep_every": None,
        "summary_seconds": 5.0,
        "lock_key": random.randrange(1, 2**62),
        "rejected_frames_path": tmp / "rejected_frames.jsonl",
        "spill_dir": tmp / "spill",
        "election_options": {"poll_interval": 0.2, "check_interval": 0.5, "heartbeat_interval": 0.5},
        "sink_options": {"batch_max_seconds": 0.1, "retry_initial_seconds": 0.05, "retry_max_seconds": 0.5},
        "ws_options": {"backoff_initial": 0.1},
    }
    opts.update(kw)
    ws_opts = dict(opts.pop("ws_options"))  # type: ignore[call-overload]
    cfg = RecorderConfig(**opts)  # type: ignore[arg-type]
    from kalshi_analytics.kalshi.ws import Backoff

    cfg.ws_options = {"backoff": Backoff(initial=float(ws_opts.get("backoff_initial", 0.1)), maximum=1.0)}
    return cfg
