"""Value conversions shared by the wire schemas: exact dollars, exact counts, UTC datetimes.

Rules (KALSHI_API.md §4, §5):
- ``*_dollars`` fields are dollar amounts, normally 4-decimal strings, occasionally JSON numbers: parsed exactly.
- the legacy price fields without a suffix are integer cents (``48`` → ``Decimal("0.48")``); a *string* in such a
  field is read as dollars (hand-made fixtures write ``"open": "0.4100"``).
- counts (``*_fp`` strings or legacy integers) are plain exact decimals.
- timestamps: ``ts_ms`` in milliseconds; ``ts`` in Unix seconds *or* an RFC3339 string; RFC3339 strings elsewhere.
  Every datetime is timezone-aware UTC.

A JSON float never becomes a binary float in our values: pydantic turns JSON numbers into ``Decimal`` through their
decimal text, and the helpers here go through ``str`` when handed a ``float``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

E = TypeVar("E", bound=StrEnum)

_CENT_EXP = -2


def _exact(value: Any, what: str) -> Decimal | None:
    """A string or number as an exact Decimal (a float via its shortest repr); ``None``/``""`` stay ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"not {what}: {value!r}") from None


def dollars(value: Any) -> Decimal | None:
    """A ``*_dollars`` value (string or number) as exact dollars; ``None``/``""`` stay ``None``."""
    return _exact(value, "a dollar amount")


def cents(value: Any) -> Decimal | None:
    """A legacy price field: integer (or float) cents → dollars; a string is already dollars."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return dollars(value)
    if isinstance(value, bool):
        raise ValueError(f"not a cent amount: {value!r}")
    if isinstance(value, int):
        return Decimal(value).scaleb(_CENT_EXP)
    if isinstance(value, Decimal):
        return value.scaleb(_CENT_EXP)
    if isinstance(value, float):
        return Decimal(repr(value)).scaleb(_CENT_EXP)
    raise ValueError(f"not a cent amount: {value!r}")


def price(dollar_value: Any, cent_value: Any) -> Decimal | None:
    """Prefer the ``*_dollars`` twin, fall back to the legacy cents field."""
    if dollar_value is not None and dollar_value != "":
        return dollars(dollar_value)
    return cents(cent_value)


def traded_price(dollar_value: Any, cent_value: Any) -> Decimal | None:
    """A last-trade price (``last_price``, ``previous_price``, ticker ``price``): ``None`` when nothing traded.

    Kalshi's schema requires the field, so a never-traded market sends ``"0.0000"`` (cents era: ``0``); no trade
    can print at $0 (prices trade strictly inside (0, 1)), so zero means "no trade", never a price of 0.
    """
    value = price(dollar_value, cent_value)
    return None if value is not None and value == 0 else value


def count(fp_value: Any, legacy_value: Any = None) -> Decimal | None:
    """A contract count from ``*_fp`` (string) or the legacy integer."""
    return _exact(fp_value if fp_value is not None and fp_value != "" else legacy_value, "a count")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=4096)
def from_ms(ms: int) -> datetime:
    """Unix milliseconds → aware UTC datetime (exact).

    Cached: frames come in bursts stamped with the same millisecond (two in three of the simulator's deltas
    repeat the previous frame's ``ts_ms``), and a hit costs a tenth of the conversion.
    """
    try:
        # Half the cost of fromtimestamp + replace, on every WS frame.
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:  # out of datetime's range: the error (and its wording) fromtimestamp gives
        return datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


def parse_time(value: Any) -> datetime | None:
    """RFC3339 string, Unix seconds (int/float/digit string) or datetime → aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float | Decimal):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a timestamp: {value!r}") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValueError(f"not a timestamp: {value!r}")


def ws_time(ts_ms: int | None, ts: Any) -> datetime | None:
    """WS message time: canonical ``ts_ms`` when sent, else the deprecated ``ts`` (seconds or RFC3339)."""
    if ts_ms is not None:
        return from_ms(ts_ms)
    return parse_time(ts)


def enum_or_str(enum: type[E], value: str | None) -> E | str | None:
    """A known enum member, or the raw string when the exchange sent a value we do not know yet (never fatal)."""
    if value is None:
        return None
    member = enum._value2member_map_.get(value)  # a dict lookup, not EnumType.__call__: once per WS frame
    if member is not None:
        return member  # type: ignore[return-value]
    try:
        return enum(value)
    except ValueError:
        return value


def levels_from(values: Iterable[Sequence[Any]] | None, *, in_cents: bool) -> tuple[tuple[Decimal, Decimal], ...]:
    """Order book levels ``[[price, count], ...]`` → ascending ``((price, count), ...)``; null/missing = empty."""
    if not values:
        return ()
    conv = cents if in_cents else dollars
    out: list[tuple[Decimal, Decimal]] = []
    for level in values:
        if len(level) < 2:
            raise ValueError(f"not a [price, count] level: {level!r}")
        p = conv(level[0])
        c = count(level[1])
        if p is None or c is None:
            raise ValueError(f"not a [price, count] level: {level!r}")
        out.append((p, c))
    out.sort(key=_first)
    return tuple(out)


def _first(level: tuple[Decimal, Decimal]) -> Decimal:
    return level[0]
