"""Shared helpers for the exchange-boundary tests: the real recorded Kalshi data in ../shared/data/kalshi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_shared_data


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder, checked out next to the repository (skip locally without it, fail in CI)."""
    return require_shared_data()


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_jsonl(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def strip_sdk_dump(obj: Any) -> Any:
    """legacy_rest_2024 files are SDK ``__dict__`` dumps: drop ``discriminator``, strip one leading ``_`` per key."""
    if isinstance(obj, dict):
        return {(k[1:] if k.startswith("_") else k): strip_sdk_dump(v) for k, v in obj.items() if k != "discriminator"}
    if isinstance(obj, list):
        return [strip_sdk_dump(v) for v in obj]
    return obj
