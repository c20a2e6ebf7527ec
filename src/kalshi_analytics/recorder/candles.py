"""1-minute candles folded from snapshots at write time (DESIGN.md §10: never aggregated per request).

The table writes compute each batch's per-minute aggregates here, in ``Decimal``, and merges them into
``market_candles_1m`` with :data:`UPSERT_CANDLES_SQL`. ``first_ts``/``last_ts`` make the merge order-free:
a late or out-of-order batch still gives the open of the earliest snapshot and the close of the latest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from kalshi_analytics.markets.pricing import DEFAULT_MAX_SPREAD, implied_probability
from kalshi_analytics.recorder.rows import SnapshotRow


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


def aggregate_candles(rows: Iterable[SnapshotRow], max_spread: Decimal = DEFAULT_MAX_SPREAD) -> list[Candle]:
    """Per (ticker, minute) aggregates of ``rows``, in any order; sorted by (ticker, minute).

    Open/close are the first/last non-null value by exchange time (receipt time breaks ties); close fields
    (bid/ask, volume, open interest) are the latest non-null values.
    """
    groups: dict[tuple[str, datetime], list[SnapshotRow]] = defaultdict(list)
    minutes: dict[datetime, datetime] = {}  # a batch's rows share few distinct minutes; truncate each ts once
    for r in rows:
        ts = r.ts
        minute = minutes.get(ts)
        if minute is None:
            minute = minutes[ts] = minute_of(ts)
        groups[(r.ticker, minute)].append(r)
    out: list[Candle] = []
    for (ticker, minute), group in sorted(groups.items()):
        if len(group) > 1:
            group.sort(key=lambda r: (r.ts, r.received_at))
        probs = [implied_probability(r.yes_bid, r.yes_ask, r.last_price, max_spread) for r in group]
        out.append(
            Candle(
                ticker,
                minute,
                group[0].ts,
                group[-1].ts,
                *_ohlc(probs),
                *_ohlc([r.last_price for r in group]),
                _last([r.yes_bid for r in group]),
                _last([r.yes_ask for r in group]),
                _last([r.volume for r in group]),
                _last([r.open_interest for r in group]),
                len(group),
            )
        )
    return out


_NO_OHLC: tuple[None, None, None, None] = (None, None, None, None)


def _ohlc(values: list[Decimal | None]) -> tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]:
    """(first, max, min, last) of the non-null values, in the given (time) order."""
    present = [v for v in values if v is not None]
    return (present[0], max(present), min(present), present[-1]) if present else _NO_OHLC


def _last(values: list[Decimal | None]) -> Decimal | None:
    for v in reversed(values):
        if v is not None:
            return v
    return None


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
