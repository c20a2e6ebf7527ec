from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from kalshi_analytics.notifications import (
    EARLIEST,
    MAX_PAYLOAD_BYTES,
    BadNotificationError,
    CommitNotice,
    parse_payload,
    render_payloads,
)

SINCE = datetime(2026, 11, 20, 12, 34, tzinfo=UTC)


@pytest.mark.parametrize("since", [SINCE, None])
def test_a_notice_survives_the_round_trip(since: datetime | None) -> None:
    notice = CommitNotice(("KXA-1", "KXB-2"), since)
    [payload] = render_payloads(notice)
    assert parse_payload(payload) == notice


def test_the_wire_format_is_unchanged() -> None:
    # Readers of other versions (an API replica not yet upgraded) parse this very text.
    assert render_payloads(CommitNotice(("A",))) == ['{"since":null,"tickers":["A"]}']
    assert json.loads(render_payloads(CommitNotice(("A",), SINCE))[0]) == {"since": SINCE.isoformat(), "tickers": ["A"]}


def test_no_tickers_no_payload() -> None:
    assert render_payloads(CommitNotice((), SINCE)) == []


def test_the_journal_position_travels_with_the_notice() -> None:
    notice = CommitNotice(("A",), SINCE, last_event_id=42)
    [payload] = render_payloads(notice)
    assert parse_payload(payload) == notice
    # A commit that journaled events about no market (a finished backtest) still notifies.
    [payload] = render_payloads(CommitNotice((), None, last_event_id=7))
    assert parse_payload(payload) == CommitNotice((), None, 7)
    split = render_payloads(CommitNotice(tuple(f"T{i:05d}" for i in range(2000)), SINCE, 9), limit=1000)
    assert len(split) > 1
    assert {parse_payload(p).last_event_id for p in split} == {9}
    assert parse_payload('{"tickers": [], "last_event_id": "x"}').last_event_id is None


def test_many_tickers_are_split_under_the_postgresql_limit() -> None:
    tickers = tuple(f"KXLONGTICKER-{i:06d}-ABCDEFGHIJ" for i in range(2000))
    payloads = render_payloads(CommitNotice(tickers, SINCE))
    assert len(payloads) > 1
    assert all(len(p.encode()) < MAX_PAYLOAD_BYTES < 8000 for p in payloads)
    notices = [parse_payload(p) for p in payloads]
    assert tuple(t for n in notices for t in n.tickers) == tickers
    assert {n.since for n in notices} == {SINCE}


def test_payloads_stay_strictly_under_the_limit() -> None:
    tickers = tuple(f"T{i:04d}" for i in range(100))
    one = render_payloads(CommitNotice(tickers, SINCE), limit=10**6)[0]
    assert render_payloads(CommitNotice(tickers, SINCE), limit=len(one.encode()) + 1) == [one]
    assert len(render_payloads(CommitNotice(tickers, SINCE), limit=len(one.encode()))) == 2


def test_non_ascii_tickers_count_in_bytes() -> None:
    tickers = tuple(f"MARCHÉ-{i:05d}" for i in range(1000))
    payloads = render_payloads(CommitNotice(tickers), limit=2000)
    assert all(len(p.encode()) < 2000 for p in payloads)
    assert tuple(t for p in payloads for t in parse_payload(p).tickers) == tickers


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[1, 2]", '"tickers"', "{}", '{"tickers": "KXA"}', '{"tickers": null, "since": null}'],
)
def test_garbage_is_refused_with_a_clear_error(payload: str) -> None:
    with pytest.raises(BadNotificationError, match="commit notification"):
        parse_payload(payload)


def test_a_missing_or_unreadable_since_means_any_time() -> None:
    assert parse_payload('{"tickers": ["A"]}').since == EARLIEST
    assert parse_payload('{"tickers": ["A"], "since": "yesterday"}').since == EARLIEST
    assert parse_payload('{"tickers": ["A"], "since": "2026-11-20T12:34:00"}').since == EARLIEST  # naive
    assert parse_payload('{"tickers": ["A"], "since": 5}').since == EARLIEST


def test_tickers_that_are_not_strings_are_skipped() -> None:
    assert parse_payload('{"tickers": ["A", 1, null, "B"], "since": null}') == CommitNotice(("A", "B"), None)
