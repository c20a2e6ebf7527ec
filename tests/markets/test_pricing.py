"""The implied-probability rule: mid when two-sided and sane, else last; Python and SQL forms agree."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from kalshi_analytics.markets.pricing import (
    implied_probability,
    implied_probability_sql,
    implied_probability_with_source,
)
from kalshi_analytics.recorder.candles import aggregate_candles
from kalshi_analytics.recorder.rows import SnapshotRow

D = Decimal


CASES = [
    (D("0.40"), D("0.44"), D("0.10"), (D("0.4200"), "mid")),
    (D("0.40"), D("0.50"), D("0.10"), (D("0.4500"), "mid")),  # spread exactly 0.10: sane
    (D("0.40"), D("0.5001"), D("0.10"), (D("0.10"), "last")),  # wider: last price
    (D("0.40"), None, D("0.33"), (D("0.33"), "last")),  # one-sided
    (None, D("0.40"), None, (None, None)),
    (D("0.45"), D("0.44"), D("0.47"), (D("0.47"), "last")),  # crossed book
    (D("0.4050"), D("0.4125"), None, (D("0.4088"), "mid")),  # half-up to the 0.0001 grid
]


@pytest.mark.parametrize(("bid", "ask", "last", "expected"), CASES)
def test_rule(bid: Decimal | None, ask: Decimal | None, last: Decimal | None, expected: tuple[object, object]) -> None:
    assert implied_probability_with_source(bid, ask, last) == expected
    assert implied_probability(bid, ask, last) == expected[0]


@pytest.mark.parametrize(("bid", "ask", "last", "expected"), CASES)
def test_recorder_candles_follow_the_same_rule(
    bid: Decimal | None, ask: Decimal | None, last: Decimal | None, expected: tuple[object, object]
) -> None:
    ts = datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC)
    (candle,) = aggregate_candles([SnapshotRow("T", ts, "poll", ts, yes_bid=bid, yes_ask=ask, last_price=last)])
    assert (candle.prob_open, candle.prob_close) == (expected[0], expected[0])


async def test_sql_form_agrees_with_python(conn: AsyncConnection) -> None:
    values = [None, D("0"), D("0.0001"), D("0.3333"), D("0.40"), D("0.4999"), D("0.50"), D("0.5001"), D("1")]
    cases = list(itertools.product(values, values, [None, D("0.77")]))
    prob, source = implied_probability_sql("b", "a", "l")
    rows = (
        await conn.execute(
            text(
                f"SELECT {prob}, {source} FROM unnest(CAST(:b AS numeric[]), CAST(:a AS numeric[]), "
                "CAST(:l AS numeric[])) WITH ORDINALITY AS t(b, a, l, i) ORDER BY i"
            ),
            {
                "b": [c[0] for c in cases],
                "a": [c[1] for c in cases],
                "l": [c[2] for c in cases],
                "max_spread": D("0.10"),
            },
        )
    ).all()
    for (b, a, last), (p, src) in zip(cases, rows, strict=True):
        assert (p, src) == implied_probability_with_source(b, a, last), (b, a, last)
