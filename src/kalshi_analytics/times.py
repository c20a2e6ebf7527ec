"""The one time grammar of every command-line option and query parameter that takes a time.

Accepted, all read as UTC unless an offset is given:
- ISO 8601 dates and datetimes: ``2026-11-01``, ``2026-11-01T12:00``, ``2026-11-01T12:00:00Z``, ``…+02:00``;
- Unix seconds: ``1767225600`` or ``1767225600.5``;
- ``now``;
- relative to now: ``-90s``, ``-90m``, ``-1h``, ``-1d``, ``-2w`` (``+`` for the future; ``-1.5h`` works too).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from kalshi_analytics.errors import InvalidInputError

GRAMMAR = "ISO 8601 (2026-11-01 or 2026-11-01T12:00Z), Unix seconds, now, or relative (-90m, -1d, -2w)"

_RELATIVE = re.compile(r"^([+-])\s*(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_UNIX = re.compile(r"^\d{1,12}(?:\.\d+)?$")
#: Times outside these years cannot be stored or compared once moved to UTC (PostgreSQL and Python both stop).
_EARLIEST, _LATEST = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)


class TimeParseError(InvalidInputError):
    """A text that is not a time of :data:`GRAMMAR`; ``field`` names the option or parameter when known."""


def in_storable_range(ts: datetime) -> bool:
    """True when ``ts`` (timezone-aware) stays within the years 1-9999 once moved to UTC, so the driver can send it."""
    try:
        return _EARLIEST <= ts <= _LATEST
    except OverflowError:
        return False


def is_relative(value: str) -> bool:
    """True for the forms whose meaning moves with the clock (``now`` and ``-1d``): answers about them age."""
    v = value.strip().lower()
    return v == "now" or _RELATIVE.match(v) is not None


def parse_time(value: str, *, now: datetime | None = None, field: str | None = None) -> datetime:
    """``value`` as a timezone-aware UTC datetime; raise :class:`TimeParseError` naming ``field`` otherwise."""
    v = value.strip()
    low = v.lower()
    label = f"{field}: " if field else ""
    if low == "now":
        return now or datetime.now(UTC)
    if m := _RELATIVE.match(low):
        sign = -1 if m.group(1) == "-" else 1
        try:
            return (now or datetime.now(UTC)) + sign * timedelta(**{_UNITS[m.group(3)]: float(m.group(2))})
        except OverflowError:
            raise TimeParseError(f"{label}{value!r} is too far from now", field=field) from None
    if _UNIX.match(v):
        try:
            return datetime.fromtimestamp(float(v), UTC)
        except (OverflowError, OSError, ValueError):
            raise TimeParseError(f"{label}{value!r} is out of range as Unix seconds", field=field) from None
    try:
        parsed = datetime.fromisoformat(v)
    except ValueError:
        raise TimeParseError(f"{label}cannot read time {value!r}: use {GRAMMAR}", field=field) from None
    result = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if not in_storable_range(result):
        raise TimeParseError(f"{label}{value!r} leaves the years 1-9999 in UTC", field=field)
    return result.astimezone(UTC)


def parse_window(
    start: str, end: str, *, now: datetime | None = None, fields: tuple[str, str] = ("start", "end")
) -> tuple[datetime, datetime]:
    """``[start, end)`` from two texts of :data:`GRAMMAR`, read against one ``now``; ``end`` must come later."""
    now_ = now or datetime.now(UTC)
    lo = parse_time(start, now=now_, field=fields[0])
    hi = parse_time(end, now=now_, field=fields[1])
    if hi <= lo:
        raise InvalidInputError(
            f"{fields[1]} ({hi.isoformat()}) must be after {fields[0]} ({lo.isoformat()})", field=fields[1]
        )
    return lo, hi
