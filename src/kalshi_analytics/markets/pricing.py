"""Pricing rules shared by the recorder (1-minute candles) and the API: one implementation.

Implied probability of YES (DESIGN.md §7):

* the **mid** of the best YES bid and YES ask, when both exist and the spread ``ask − bid`` is between 0 and
  ``max_spread`` (default 0.10 dollars, i.e. 10 points of probability) — a two-sided, sane market;
* otherwise the **last trade price** (one-sided, crossed or too wide a book says little about the price);
* otherwise unknown (``None``).

The mid is rounded half-up to the 0.0001 grid of ``NUMERIC(10,4)``, so the API and the stored candles agree.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

DEFAULT_MAX_SPREAD = Decimal("0.10")
TICK = Decimal("0.0001")
TWO = Decimal(2)

ProbabilitySource = Literal["mid", "last"]


def implied_probability_with_source(
    yes_bid: Decimal | None,
    yes_ask: Decimal | None,
    last_price: Decimal | None,
    max_spread: Decimal = DEFAULT_MAX_SPREAD,
) -> tuple[Decimal | None, ProbabilitySource | None]:
    """``(probability, "mid" | "last" | None)`` by the rule in this module's docstring."""
    if yes_bid is not None and yes_ask is not None and Decimal(0) <= yes_ask - yes_bid <= max_spread:
        return ((yes_bid + yes_ask) / TWO).quantize(TICK, rounding=ROUND_HALF_UP), "mid"
    if last_price is not None:
        return last_price, "last"
    return None, None


def implied_probability(
    yes_bid: Decimal | None,
    yes_ask: Decimal | None,
    last_price: Decimal | None,
    max_spread: Decimal = DEFAULT_MAX_SPREAD,
) -> Decimal | None:
    """Mid of the YES bid/ask when both exist and the spread is at most ``max_spread``, else the last price.

    The mid is rounded half-up to the 0.0001 grid of ``NUMERIC(10,4)`` (what PostgreSQL would store).
    """
    return implied_probability_with_source(yes_bid, yes_ask, last_price, max_spread)[0]


def implied_probability_sql(
    bid: str = "yes_bid", ask: str = "yes_ask", last: str = "last_price", max_spread: str = ":max_spread"
) -> tuple[str, str]:
    """The same rule as SQL expressions ``(probability, source)`` over the given columns, for queries that
    render JSON in PostgreSQL. ``round(x, 4)`` rounds half away from zero: half-up for prices ≥ 0, as above.
    Tested against :func:`implied_probability_with_source` on the same inputs."""
    sane = f"({bid} IS NOT NULL AND {ask} IS NOT NULL AND {ask} - {bid} BETWEEN 0 AND CAST({max_spread} AS numeric))"
    prob = f"CASE WHEN {sane} THEN round(({bid} + {ask}) / 2, 4) ELSE {last} END"
    source = f"CASE WHEN {sane} THEN 'mid' WHEN {last} IS NOT NULL THEN 'last' END"
    return prob, source
