"""The guard of the tests that read the shared data: skip on a developer's machine without it, fail in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SHARED_DATA, require_shared_data


def test_missing_data_skips_the_test_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_SHARED_DATA, raising=False)
    with pytest.raises(pytest.skip.Exception, match="not checked out"):
        require_shared_data(tmp_path / "missing")


@pytest.mark.parametrize("value", ["", "0"])
def test_an_empty_or_zero_requirement_still_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(REQUIRE_SHARED_DATA, value)
    with pytest.raises(pytest.skip.Exception):
        require_shared_data(tmp_path / "missing")


def test_missing_data_fails_the_test_when_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SHARED_DATA, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_SHARED_DATA} is set"):
        require_shared_data(tmp_path / "missing")


def test_present_data_is_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SHARED_DATA, "1")
    assert require_shared_data(tmp_path) == tmp_path
