"""1-minute candles folded from snapshots at write time (DESIGN.md §10: never aggregated per request).

The sink computes each batch's per-minute aggregates here, in ``Decimal``, and merges them into
``market_candles_1m`` with :data:`UPSERT_CANDLES_SQL`. ``first_ts``/``last_ts`` make the merge order-free:
a late or out-of-order batch still gives the open of the earliest snapshot and the close of the latest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from kalshi_analytics.recorder.bulk import SnapshotRow

DEFAULT_MAX_SPREAD = Decimal("0.10")
TICK = Decimal("0.0001")
TWO = Decimal(2)


def implied_probability(
    yes_bid: Decimal | None,
    yes_ask: Decimal | None,
    last_price: Decimal | None,
    max_spread: Decimal = DEFAULT_MAX_SPREAD,
) -> Decimal | None:
    """Mid of the YES bid/ask when both exist and the spread is at most ``max_spread``, else the last price.

    The mid is rounded half-up to the 0.0001 grid of ``NUMERIC(10,4)`` (what PostgreSQL would store).
    """
    if yes_bid is not None and yes_ask is not None and Decimal(0) <= yes_ask - yes_bid <= max_spread:
        return ((yes_bid + yes_ask) / TWO).quantize(TICK, rounding=ROUND_HALF_UP)
    return last_price


class Candle(NamedTuple):
    """One row of ``market_candles_1m`` as computed from one batch (columns in table order)."""

    ticker: str
    minute: datetime
    first_ts: datetime
    last_ts: datetime
    prob_open: Decimal | None
    prob_high: Decimal | None
    prob_low: Decimal | None
    prob_close: Decimal | None
    price_open: Decimal | None
    price_high: Decimal | None
    price_low: Decimal | None
    price_close: Decimal | None
    yes_bid_close: Decimal | None
    yes_ask_close: Decimal | None
    volume: Decimal | None
    open_interest: Decimal | None
    snapshots: int


CANDLE_COLUMNS: tuple[str, ...] = Candle._fields


def minute_of(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def _first(values: Iterable[Decimal | None]) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def _extremes(values: Sequence[Decimal | None]) -> tuple[Decimal | None, Decimal | None]:
    present = [v for v in values if v is not None]
    return (max(present), min(present)) if present else (None, None)


def aggregate_candles(rows: Iterable[SnapshotRow], max_spread: Decimal = DEFAULT_MAX_SPREAD) -> list[Candle]:
    """Per (ticker, minute) aggregates of ``rows``, in any order; sorted by (ticker, minute).

    Open/close are the first/last non-null value by exchange time (receipt time breaks ties); close fields
    (bid/ask, volume, open interest) are the latest non-null values.
    """
    groups: dict[tuple[str, datetime], list[SnapshotRow]] = defaultdict(list)
    for r in rows:
        groups[(r.ticker, minute_of(r.ts))].append(r)
    out: list[Candle] = []
    for (ticker, minute), group in sorted(groups.items()):
        group.sort(key=lambda r: (r.ts, r.received_at))
        probs = [implied_probability(r.yes_bid, r.yes_ask, r.last_price, max_spread) for r in group]
        prices = [r.last_price for r in group]
        prob_high, prob_low = _extremes(probs)
        price_high, price_low = _extremes(prices)
        out.append(
            Candle(
                ticker=ticker,
                minute=minute,
                first_ts=group[0].ts,
                last_ts=group[-1].ts,
                prob_open=_first(probs),
                prob_high=prob_high,
                prob_low=prob_low,
                prob_close=_first(reversed(probs)),
                price_open=_first(prices),
                price_high=price_high,
                price_low=price_low,
                price_close=_first(reversed(prices)),
                yes_bid_close=_first(r.yes_bid for r in reversed(group)),
                yes_ask_close=_first(r.yes_ask for r in reversed(group)),
                volume=_first(r.volume for r in reversed(group)),
                open_interest=_first(r.open_interest for r in reversed(group)),
                snapshots=len(group),
            )
        )
    return out


_TYPES = {
    "ticker": "text",
    "minute": "timestamptz",
    "first_ts": "timestamptz",
    "last_ts": "timestamptz",
    "snapshots": "int4",
}


def _open(col: str) -> str:
    return (
        f"{col} = CASE WHEN EXCLUDED.first_ts < c.first_ts THEN COALESCE(EXCLUDED.{col}, c.{col}) "
        f"ELSE COALESCE(c.{col}, EXCLUDED.{col}) END"
    )


def _close(col: str) -> str:
    return (
        f"{col} = CASE WHEN EXCLUDED.last_ts >= c.last_ts THEN COALESCE(EXCLUDED.{col}, c.{col}) "
        f"ELSE COALESCE(c.{col}, EXCLUDED.{col}) END"
    )


_SETS = [
    _open("prob_open"),
    "prob_high = GREATEST(c.prob_high, EXCLUDED.prob_high)",  # GREATEST/LEAST ignore NULLs
    "prob_low = LEAST(c.prob_low, EXCLUDED.prob_low)",
    _close("prob_close"),
    _open("price_open"),
    "price_high = GREATEST(c.price_high, EXCLUDED.price_high)",
    "price_low = LEAST(c.price_low, EXCLUDED.price_low)",
    _close("price_close"),
    _close("yes_bid_close"),
    _close("yes_ask_close"),
    _close("volume"),
    _close("open_interest"),
    "first_ts = LEAST(c.first_ts, EXCLUDED.first_ts)",
    "last_ts = GREATEST(c.last_ts, EXCLUDED.last_ts)",
    "snapshots = c.snapshots + EXCLUDED.snapshots",
]

_PARAMS = ", ".join(f"${i}::{_TYPES.get(c, 'numeric')}[]" for i, c in enumerate(CANDLE_COLUMNS, 1))
UPSERT_CANDLES_SQL = (
    f"INSERT INTO market_candles_1m AS c ({', '.join(CANDLE_COLUMNS)}) "
    f"SELECT * FROM unnest({_PARAMS}) "
    f"ON CONFLICT (ticker, minute) DO UPDATE SET {', '.join(_SETS)}"
)


def candle_columns(candles: Sequence[Candle]) -> list[list[Any]]:
    """The batch as one list per column (the arguments of :data:`UPSERT_CANDLES_SQL`)."""
    return [list(col) for col in zip(*candles, strict=True)] if candles else [[] for _ in CANDLE_COLUMNS]
