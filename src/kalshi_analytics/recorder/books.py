"""Order books kept from the WebSocket ``orderbook_delta`` channel (KALSHI_API.md §5).

A snapshot replaces a market's book; a delta adds its (signed, exact ``Decimal``) size to one level and a level
whose total falls to ≤ 0 disappears. A seq gap on a subscription marks every book of that ``sid`` stale (the
lost frame cannot be attributed to one market); a stale book ignores deltas until a fresh snapshot arrives.
Books are bids only, both legs: best YES ask = 1 − best NO bid, best NO ask = 1 − best YES bid.

:meth:`BookKeeper.due_rows` produces an :class:`~kalshi_analytics.recorder.rows.OrderbookRow` per fresh book
that changed since its last row, at most once per ``interval`` seconds per market.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from kalshi_analytics.kalshi.domain import ONE, OrderbookDelta, OrderbookSnapshot, PriceLevel
from kalshi_analytics.recorder.rows import OrderbookRow

ZERO = Decimal(0)


@dataclass(slots=True)
class Book:
    """One market's resting bids, ``price → size`` per leg."""

    ticker: str
    sid: int | None = None
    yes: dict[Decimal, Decimal] = field(default_factory=dict)
    no: dict[Decimal, Decimal] = field(default_factory=dict)
    stale: bool = True  # until the first snapshot
    seq: int | None = None
    ts: datetime | None = None  # exchange time of the last change (delta ts_ms) or receipt time of a snapshot
    received_at: datetime | None = None
    changed: bool = False  # since the last OrderbookRow
    last_row_mono: float = -1e18

    # ------------------------------------------------------------------------------------------------- updates
    def apply_snapshot(self, snap: OrderbookSnapshot) -> None:
        self.yes = {lv.price: lv.size for lv in snap.book.yes if lv.size > 0}
        self.no = {lv.price: lv.size for lv in snap.book.no if lv.size > 0}
        self.sid, self.seq, self.stale, self.changed = snap.sid, snap.seq, False, True
        self.ts = self.received_at = snap.received_at

    def apply_delta(self, d: OrderbookDelta) -> bool:
        """Apply a delta; False (ignored) while the book is stale."""
        if self.stale:
            return False
        levels = self.yes if d.side == "yes" else self.no  # a StrEnum equals its value
        total = levels.get(d.price, ZERO) + d.delta
        if total > ZERO:
            levels[d.price] = total
        else:
            levels.pop(d.price, None)
        self.seq, self.changed = d.seq, True
        self.ts = d.ts or d.received_at
        self.received_at = d.received_at
        return True

    # -------------------------------------------------------------------------------------------------- reads
    def levels(self, side: str) -> tuple[PriceLevel, ...]:
        """Ascending by price, best bid last (Kalshi's order)."""
        src = self.yes if side == "yes" else self.no
        return tuple(PriceLevel(p, src[p]) for p in sorted(src))

    @property
    def best_yes_bid(self) -> Decimal | None:
        return max(self.yes) if self.yes else None

    @property
    def best_no_bid(self) -> Decimal | None:
        return max(self.no) if self.no else None

    @property
    def best_yes_ask(self) -> Decimal | None:
        b = self.best_no_bid
        return None if b is None else ONE - b

    @property
    def best_no_ask(self) -> Decimal | None:
        b = self.best_yes_bid
        return None if b is None else ONE - b

    @property
    def yes_bid_size(self) -> Decimal | None:
        b = self.best_yes_bid
        return None if b is None else self.yes[b]

    @property
    def yes_ask_size(self) -> Decimal | None:
        """Contracts available at the best YES ask = size of the best NO bid."""
        b = self.best_no_bid
        return None if b is None else self.no[b]

    def row(self, source: str = "websocket") -> OrderbookRow:
        assert self.ts is not None
        assert self.received_at is not None
        return OrderbookRow(
            self.ticker, self.ts, self.received_at, source, self.seq, self.levels("yes"), self.levels("no")
        )


class BookKeeper:
    """Every market's book, fed by the stream loop; ``interval`` bounds how often a market's book is written."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.books: dict[str, Book] = {}
        self.deltas_ignored = 0  # deltas that arrived while their book was stale

    def book(self, ticker: str) -> Book:
        b = self.books.get(ticker)
        if b is None:
            b = self.books[ticker] = Book(ticker)
        return b

    def on_snapshot(self, snap: OrderbookSnapshot) -> Book:
        b = self.book(snap.market_ticker)
        b.apply_snapshot(snap)
        return b

    def on_delta(self, d: OrderbookDelta) -> Book:
        b = self.book(d.market_ticker)
        if not b.apply_delta(d):
            self.deltas_ignored += 1
        return b

    def mark_stale(self, sid: int | None = None) -> list[str]:
        """Mark the books of ``sid`` (all books when None) stale; returns their tickers."""
        out = []
        for b in self.books.values():
            if sid is None or b.sid == sid:
                b.stale = True
                out.append(b.ticker)
        return out

    def discard(self, ticker: str) -> None:
        self.books.pop(ticker, None)

    def stale_tickers(self) -> list[str]:
        return [t for t, b in self.books.items() if b.stale]

    def due_rows(self, now_mono: float, *, force: bool = False) -> list[OrderbookRow]:
        """Rows for fresh books that changed and were last written ``interval`` ago (or any changed, ``force``)."""
        rows = []
        for b in self.books.values():
            if b.stale or not b.changed or b.ts is None:
                continue
            if force or now_mono - b.last_row_mono >= self.interval:
                rows.append(b.row())
                b.changed, b.last_row_mono = False, now_mono
        return rows
