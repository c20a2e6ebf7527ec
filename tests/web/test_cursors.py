"""The cursor codec: what the API writes it reads back; anything else is a 422 naming ``cursor``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.web.cursors import (
    CURSOR_FIELD,
    cursor_bigint,
    cursor_decimal,
    cursor_text,
    cursor_time,
    cursor_uuid,
    decode_cursor,
    encode_cursor,
)

TS = datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)


def test_round_trip_of_every_reader() -> None:
    uid = uuid.uuid4()
    token = encode_cursor("k", TS.isoformat(), "T-1", 2**63 - 1, "12.50", str(uid))
    got = decode_cursor(token, "k", cursor_time, cursor_text, cursor_bigint, cursor_decimal, cursor_uuid)
    assert got == (TS, "T-1", 2**63 - 1, Decimal("12.50"), uid)


def test_another_listing_or_arity_is_refused() -> None:
    token = encode_cursor("trades", TS.isoformat(), "x")
    with pytest.raises(InvalidInputError) as exc:
        decode_cursor(token, "snapshots", cursor_time, cursor_text)
    assert exc.value.field == CURSOR_FIELD
    with pytest.raises(InvalidInputError):
        decode_cursor(token, "trades", cursor_time)


@pytest.mark.parametrize(
    ("read", "value"),
    [
        (cursor_time, "2026-11-20T12:00:00"),  # no offset
        (cursor_time, "0001-01-01T00:00:00+14:00"),
        (cursor_time, "9999-12-31T23:59:59-14:00"),
        (cursor_time, 1_700_000_000),
        (cursor_text, "a\x00b"),
        (cursor_text, "x" * 1001),
        (cursor_text, 5),
        (cursor_bigint, 2**63),
        (cursor_bigint, -(2**63) - 1),
        (cursor_bigint, True),
        (cursor_bigint, 1.0),
        (cursor_decimal, "NaN"),
        (cursor_decimal, "-Infinity"),
        (cursor_decimal, "1e999999"),
        (cursor_decimal, 1.5),
        (cursor_uuid, "not-a-uuid"),
        (cursor_uuid, None),
    ],
)
def test_values_no_query_could_take_are_refused(read: Any, value: Any) -> None:
    with pytest.raises(InvalidInputError) as exc:
        read(value)
    assert exc.value.field == CURSOR_FIELD
