"""The one time grammar shared by every CLI option and query parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.times import TimeParseError, is_relative, parse_time, parse_window

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        (" NOW ", NOW),
        ("-90s", NOW - timedelta(seconds=90)),
        ("-90m", NOW - timedelta(minutes=90)),
        ("-1h", NOW - timedelta(hours=1)),
        ("-1.5h", NOW - timedelta(minutes=90)),
        ("-2d", NOW - timedelta(days=2)),
        ("-2w", NOW - timedelta(weeks=2)),
        ("+1h", NOW + timedelta(hours=1)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T08:30", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),  # no offset = UTC
        ("2026-11-20T08:30:00Z", datetime(2026, 11, 20, 8, 30, tzinfo=UTC)),
        ("2026-11-20T08:30+01:00", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),
        ("1767225600", datetime(2026, 1, 1, tzinfo=UTC)),
        ("1767225600.5", datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_every_form_reads_as_utc(text: str, expected: datetime) -> None:
    got = parse_time(text, now=NOW)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text", ["yesterday", "-3y", "1e300", "", "2026-13-01", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
)
def test_unreadable_or_unstorable_times_name_the_field(text: str) -> None:
    with pytest.raises(TimeParseError, match=r"^--since: ") as info:
        parse_time(text, now=NOW, field="--since")
    assert info.value.field == "--since"
    assert isinstance(info.value, InvalidInputError)


def test_relative_forms_are_known_as_relative() -> None:
    for relative in ("now", "-1d", "+2h"):
        assert is_relative(relative)
    for fixed in ("2026-11-20", "1767225600"):
        assert not is_relative(fixed)


def test_a_window_reads_both_ends_against_one_clock() -> None:
    assert parse_window("-1d", "now", now=NOW) == (NOW - timedelta(days=1), NOW)
    with pytest.raises(InvalidInputError, match=r"^end \(.*\) must be after start") as info:
        parse_window("now", "-1d", now=NOW)
    assert info.value.field == "end"
