from __future__ import annotations

import json
import logging

import pytest

from kalshi_analytics.logs import configure_logging, get_logger

pytestmark = pytest.mark.usefixtures("restore_logging")


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


def test_library_records_have_header_values_and_pem_keys_masked_for_every_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    factory = logging.getLogRecordFactory()
    seen: list[str] = []

    class Raw(logging.Handler):  # a handler of someone else's, formatting the record itself
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    try:
        configure_logging("DEBUG", "kv")
        logging.getLogger().addHandler(Raw())
        lib = logging.getLogger("a.library")
        lib.debug("> %s: %s", "KALSHI-ACCESS-SIGNATURE", "c2lnbmF0dXJl+/==")
        lib.debug("headers %r", {"KALSHI-ACCESS-KEY": "kid-secret-1", "Accept": "application/json"})
        lib.debug("raw %r", [(b"kalshi-access-signature", b"c2ln"), (b"authorization", b"Bearer tok123")])
        lib.info("key -----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY----- loaded")
    finally:
        logging.setLogRecordFactory(factory)
    text = "\n".join(seen) + capsys.readouterr().err
    for secret in ("c2lnbmF0dXJl", "kid-secret-1", "c2ln'", "tok123", "MIIEv", "BEGIN PRIVATE"):
        assert secret not in text
    assert "> KALSHI-ACCESS-SIGNATURE: ***" in seen[0]
    assert "application/json" in seen[1], "only secret values are masked"


def test_a_value_starting_with_b_is_masked_whole() -> None:
    from kalshi_analytics.logs import mask_text

    assert mask_text("> KALSHI-ACCESS-KEY: b952bcbe-ec3b") == "> KALSHI-ACCESS-KEY: ***"
    assert mask_text("(b'kalshi-access-key', b'b952bcbe')") == "(b'kalshi-access-key', b'***')"
