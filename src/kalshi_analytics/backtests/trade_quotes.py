"""Snapshots that recorded a trade and no quote (trade-price candles, PROVENANCE.md §1): quoted at the trade.

The NBA candle import stores what its files hold — each minute's last trade as ``last_price`` and no bid, ask
or size — so nothing invented sits in the database. A backtest still needs a price to decide and fill at. With
the fill model's ``trade_quotes`` (the default) such a snapshot is quoted, for this run only, at its trade on
both sides: YES bid = YES ask = the trade, NO bid = NO ask = 1 − the trade, sizes unknown. Strategies then see
the one price the data shows (a mid of the trade), fills pay it capped at the fill model's
``unknown_size_cap`` (flag ``size_unknown``), and the core counts them (``trade_priced_fills``, flag
``price_from_trades``). It assumes no spread, so it flatters a taker: on such data a result is an upper bound
of what crossing a real spread would have earned. Without ``trade_quotes`` those snapshots have no quote
(strategies see NaN, orders are skipped as ``no_quote``).

Only snapshots with none of the four quote columns recorded are touched: a recorded quote, even one-sided, is
the market's, and a trade printed elsewhere does not move it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from kalshi_analytics.backtests.data import Dataset

BoolArray = npt.NDArray[np.bool_]
_QUOTES = ("yes_bid", "yes_ask", "no_bid", "no_ask")


def unquoted_trades(ds: Dataset) -> BoolArray | None:
    """Rows with a trade price in (0, 1) and no quote recorded; None when there are none (the common case,
    decided by one pass over ``yes_bid``)."""
    if not ds.rows:
        return None
    c = ds.columns
    candidates = np.flatnonzero(np.isnan(c["yes_bid"]))
    if not len(candidates):
        return None
    last = c["last_price"][candidates]
    keep = (last > 0) & (last < 1)
    for name in _QUOTES[1:]:
        keep &= np.isnan(c[name][candidates])
    if not keep.any():
        return None
    mask = np.zeros(ds.rows, np.bool_)
    mask[candidates[keep]] = True
    return mask


def quote_trades(ds: Dataset) -> tuple[Dataset, BoolArray | None]:
    """``ds`` with its unquoted trade snapshots quoted at the trade (a new dataset; the caller's is unchanged)
    and the mask of those rows (None, and ``ds`` itself, when there are none)."""
    mask = unquoted_trades(ds)
    if mask is None:
        return ds, None
    columns = dict(ds.columns)
    last = ds.columns["last_price"][mask]
    for name in _QUOTES:
        col = columns[name] = ds.columns[name].copy()
        col[mask] = last if name.startswith("yes") else 1 - last
    return dataclasses.replace(ds, columns=columns), mask
