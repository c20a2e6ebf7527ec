from __future__ import annotations

import json
import logging

import pytest

from kalshi_analytics.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_mask_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    get_logger("t").info(
        "connecting",
        db_url="postgresql://kalshi:hunter2@db/kalshi",
        private_key="-----BEGIN PRIVATE KEY-----abc",
        headers={"KALSHI-ACCESS-SIGNATURE": "c2ln", "KALSHI-ACCESS-KEY": "key-id"},
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "connecting"
    assert event["level"] == "info"
    assert event["db_url"] == "postgresql://kalshi:***@db/kalshi"
    assert event["private_key"] == "***"
    assert event["headers"]["KALSHI-ACCESS-SIGNATURE"] == "***"
    assert "hunter2" not in line
    assert "BEGIN PRIVATE" not in line


def test_key_value_format_and_level_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "kv")
    log = get_logger("t")
    log.info("hidden")
    log.warning("shown", poll_seconds=5)
    logging.getLogger("some.library").warning("from stdlib with password=%s", "x")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "event='shown'" in err
    assert "poll_seconds=5" in err
    assert "from stdlib" in err  # library logs go through the same renderer
