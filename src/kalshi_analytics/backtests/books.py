"""Recorded order books of a dataset's markets, for fill models that walk levels beyond the touch.

``orderbook_snapshots`` rows (full books, bids of both legs ascending, as Kalshi sends them; the recorder writes
one per changed book every few seconds) are loaded for the window as flat arrays. The book in force at a
snapshot is the latest one recorded at or before it; its depth is used only when its best level matches the
snapshot's touch (:func:`~kalshi_analytics.trading.fills.levels_beyond_touch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.trading.fills import levels_beyond_touch

if TYPE_CHECKING:
    from kalshi_analytics.backtests.data import Dataset

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BookTape:
    """Market ``k``'s books are rows ``offsets[k]:offsets[k+1]`` (time order). Book ``i``'s YES bids are
    ``yes_px[yes_off[i]:yes_off[i+1]]`` at ``yes_sz[…]`` (ascending), its NO bids likewise."""

    offsets: IntArray
    ts_us: IntArray
    yes_off: IntArray
    yes_px: FloatArray
    yes_sz: FloatArray
    no_off: IntArray
    no_px: FloatArray
    no_sz: FloatArray

    @property
    def rows(self) -> int:
        return len(self.ts_us)

    def depth(self, k: int, at_us: int, side: int, buy: bool, touch: float) -> list[tuple[float, float]]:
        """Levels beyond ``touch`` of the book in force at ``at_us`` for one order (best first)."""
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        if a == b:
            return []
        i = a + int(np.searchsorted(self.ts_us[a:b], at_us, side="right")) - 1
        if i < a:
            return []
        y0, y1, n0, n1 = int(self.yes_off[i]), int(self.yes_off[i + 1]), int(self.no_off[i]), int(self.no_off[i + 1])
        yes = list(zip(self.yes_px[y0:y1].tolist(), self.yes_sz[y0:y1].tolist(), strict=True))
        no = list(zip(self.no_px[n0:n1].tolist(), self.no_sz[n0:n1].tolist(), strict=True))
        return levels_beyond_touch(yes, no, side=side, buy=buy, touch=touch)

    @classmethod
    def from_books(
        cls, per_market: list[list[tuple[int, list[tuple[float, float]], list[tuple[float, float]]]]]
    ) -> BookTape:
        """From ``[(ts_us, yes_bids, no_bids), …]`` per market (time order): for tests and small feeds."""
        offsets, ts, yo, ypx, ysz, no, npx, nsz = [0], [], [0], [], [], [0], [], []
        for books in per_market:
            for t, yes, nob in books:
                ts.append(t)
                ypx += [p for p, _ in yes]
                ysz += [s for _, s in yes]
                yo.append(len(ypx))
                npx += [p for p, _ in nob]
                nsz += [s for _, s in nob]
                no.append(len(npx))
            offsets.append(len(ts))
        i64, f64 = np.int64, np.float64
        return cls(
            np.array(offsets, i64),
            np.array(ts, i64),
            np.array(yo, i64),
            np.array(ypx, f64),
            np.array(ysz, f64),
            np.array(no, i64),
            np.array(npx, f64),
            np.array(nsz, f64),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_COLUMNS = "yes_prices::float8[] AS yp, yes_sizes::float8[] AS ys, no_prices::float8[] AS np, no_sizes::float8[] AS ns"
_WINDOW_SQL = (
    f"SELECT ticker, ts, {_COLUMNS} FROM orderbook_snapshots "
    "WHERE ticker = ANY($1::text[]) AND ts >= $2 AND ts < $3 ORDER BY ticker, ts, source"
)
# The book in force at each point: the latest recorded at or before it (the primary key serves the search).
_AS_OF_SQL = (
    f"SELECT DISTINCT b.ticker, b.ts, {_COLUMNS} FROM unnest($1::text[], $2::timestamptz[]) AS p(ticker, ts) "
    "CROSS JOIN LATERAL (SELECT o.* FROM orderbook_snapshots o WHERE o.ticker = p.ticker AND o.ts <= p.ts "
    "ORDER BY o.ts DESC, o.source DESC LIMIT 1) b ORDER BY b.ticker, b.ts"
)


async def load_books(engine: AsyncEngine, ds: Dataset, points: dict[int, IntArray] | None = None) -> BookTape | None:
    """Recorded books of ``ds``'s markets: the one in force at each of ``points`` (market index → times, µs), or,
    with ``points`` None, the one in force at the window's start and every book inside the window (the per-event
    path cannot say in advance when it will trade). None when there are none."""
    if not ds.markets or points == {}:
        return None
    tickers = [m.ticker for m in ds.markets]
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        if points is None:
            start = ds.start.astimezone(UTC)
            # The book in force when the window opens (recorded before it), then every book inside it.
            rows = [r for r in await driver.fetch(_AS_OF_SQL, tickers, [start] * len(tickers)) if r["ts"] < start]
            rows += await driver.fetch(_WINDOW_SQL, tickers, start, ds.end.astimezone(UTC))
        else:
            names = [tickers[k] for k, ts in points.items() for _ in range(len(ts))]
            times = [_EPOCH + _US * int(t) for ts in points.values() for t in ts.tolist()]
            rows = await driver.fetch(_AS_OF_SQL, names, times)
        await conn.rollback()
    if not rows:
        return None
    index = {t: k for k, t in enumerate(tickers)}
    per_market: list[list[tuple[int, list[tuple[float, float]], list[tuple[float, float]]]]] = [[] for _ in tickers]
    for r in rows:
        ts_us = (r["ts"] - _EPOCH) // _US
        yes = list(zip(r["yp"] or [], r["ys"] or [], strict=True))
        no = list(zip(r["np"] or [], r["ns"] or [], strict=True))
        per_market[index[r["ticker"]]].append((ts_us, yes, no))
    return BookTape.from_books(per_market)
