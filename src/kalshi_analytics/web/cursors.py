"""The keyset-pagination cursor: an opaque base64url token holding the sort key of the last row returned.

A listing names its kind (``"trades"``, ``"markets:volume:desc"``) as the first value, so a cursor of another
listing, or of other sort options, is refused instead of silently paging from the wrong place.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from kalshi_analytics.errors import InvalidInputError

#: The parameter name every listing uses for its cursor.
CURSOR_FIELD = "cursor"


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, n: int, kind: str) -> list[Any]:
    """The ``n`` values of a cursor of listing ``kind`` (its first value)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError("not a cursor returned by this API", field=CURSOR_FIELD) from None
    if not isinstance(values, list) or len(values) != n or values[0] != kind:
        raise InvalidInputError("not a cursor of this listing (or of other sort options)", field=CURSOR_FIELD)
    return values


def cursor_time(value: Any) -> datetime:
    """A timestamp a cursor carries (ISO 8601 with its offset, as :func:`encode_cursor` wrote it)."""
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError("corrupt cursor", field=CURSOR_FIELD) from None
    if ts.tzinfo is None:
        raise InvalidInputError("corrupt cursor", field=CURSOR_FIELD)
    return ts
