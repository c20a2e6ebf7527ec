"""The keyset-pagination cursor: an opaque base64url token holding the sort key of the last row returned.

A listing names its kind (``"trades"``, ``"markets:volume:desc"``) as the first value, so a cursor of another
listing, or of other sort options, is refused instead of silently paging from the wrong place.

Cursors are not signed: anyone can write one. Every value is therefore read back with a :data:`Reader` of its
type (a time within the years PostgreSQL and Python share, text without NUL, an integer within ``bigint``, a
finite decimal, a UUID) before it reaches a query, so a crafted cursor is a 422 naming ``cursor`` — never a
driver error — and one that passes is a cursor the API could have written itself. (Unsigned cursors need no
secret shared by the API replicas.)
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.times import in_storable_range

#: The parameter name every listing uses for its cursor.
CURSOR_FIELD = "cursor"

#: Reads one value of a cursor into what a query takes; raises :class:`CorruptCursorError` when it cannot.
Reader = Callable[[Any], Any]

_BIGINT = 2**63 - 1
_MAX_TEXT = 1000
#: NUMERIC holds 131,072 digits before the point; a cursor's sort key (a volume) is nowhere near.
_MAX_EXPONENT = 1000


class CorruptCursorError(InvalidInputError):
    def __init__(self, why: str = "not a cursor returned by this API") -> None:
        super().__init__(why, field=CURSOR_FIELD)


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, kind: str, *readers: Reader) -> tuple[Any, ...]:
    """The values of a cursor of listing ``kind`` (its first value), each read by its reader, in order."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise CorruptCursorError from None
    if not isinstance(values, list) or len(values) != len(readers) + 1 or values[0] != kind:
        raise CorruptCursorError("not a cursor of this listing (or of other sort options)")
    return tuple(read(value) for read, value in zip(readers, values[1:], strict=True))


def cursor_time(value: Any) -> datetime:
    """A timestamp as :func:`encode_cursor` wrote it (ISO 8601 with its offset), within the storable years."""
    if not isinstance(value, str):
        raise CorruptCursorError
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise CorruptCursorError from None
    if ts.tzinfo is None or not in_storable_range(ts):
        raise CorruptCursorError
    return ts


def cursor_text(value: Any) -> str:
    """A text PostgreSQL can hold (no NUL) of a sane length."""
    if not isinstance(value, str) or "\x00" in value or len(value) > _MAX_TEXT:
        raise CorruptCursorError
    return value


def cursor_bigint(value: Any) -> int:
    """An integer within ``bigint`` (a JSON number, not a bool, a float or a text)."""
    if type(value) is not int or not -_BIGINT - 1 <= value <= _BIGINT:
        raise CorruptCursorError
    return value


def cursor_decimal(value: Any) -> Decimal:
    """A finite decimal PostgreSQL's NUMERIC can hold, written as text (as the API writes sort keys)."""
    if not isinstance(value, str) or len(value) > 100:
        raise CorruptCursorError
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CorruptCursorError from None
    if not number.is_finite() or abs(number.adjusted()) > _MAX_EXPONENT:
        raise CorruptCursorError
    return number


def cursor_uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise CorruptCursorError
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CorruptCursorError from None
