"""Order books from snapshot + deltas: exact decimals, removal at ≤ 0, staleness on gaps, both legs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

from kalshi_analytics.kalshi.domain import OrderBook, OrderbookDelta, OrderbookSnapshot, PriceLevel
from kalshi_analytics.recorder.books import BookKeeper

T = datetime(2026, 11, 21, 12, tzinfo=UTC)


def snap(sid: int = 1, seq: int = 1, ticker: str = "A") -> OrderbookSnapshot:
    book = OrderBook(
        ticker=ticker,
        yes=(PriceLevel(D("0.08"), D("300")), PriceLevel(D("0.22"), D("333.47"))),
        no=(PriceLevel(D("0.54"), D("20")), PriceLevel(D("0.56"), D("146"))),
    )
    return OrderbookSnapshot(sid=sid, seq=seq, market_id=None, book=book, received_at=T)


def delta(price: str, d: str, side: str = "yes", seq: int = 2, ticker: str = "A") -> OrderbookDelta:
    return OrderbookDelta(
        sid=1, seq=seq, market_ticker=ticker, market_id=None, side=side, price=D(price), delta=D(d), ts=T, received_at=T
    )


def test_snapshot_then_deltas_with_exact_decimals_and_both_legs() -> None:
    k = BookKeeper(interval=0)
    b = k.on_snapshot(snap())
    assert (b.best_yes_bid, b.best_no_bid) == (D("0.22"), D("0.56"))
    assert (b.best_yes_ask, b.best_no_ask) == (D("0.44"), D("0.78"))
    assert (b.yes_bid_size, b.yes_ask_size) == (D("333.47"), D("146"))
    k.on_delta(delta("0.22", "-0.47"))
    assert b.yes[D("0.22")] == D("333.00")
    k.on_delta(delta("0.22", "-333"))  # down to 0: the level goes
    assert b.best_yes_bid == D("0.08")
    k.on_delta(delta("0.10", "5.5"))
    k.on_delta(delta("0.56", "-200", side="no"))  # below 0 also removes
    assert b.best_no_bid == D("0.54")
    rows = k.due_rows(0.0)
    assert len(rows) == 1
    assert rows[0].yes == (PriceLevel(D("0.08"), D("300")), PriceLevel(D("0.10"), D("5.5")))
    assert rows[0].no == (PriceLevel(D("0.54"), D("20")),)
    assert k.due_rows(0.0) == [], "unchanged books are not written again"


def test_a_gap_makes_the_sids_books_stale_until_a_fresh_snapshot() -> None:
    k = BookKeeper(interval=10)
    k.on_snapshot(snap(sid=1, ticker="A"))
    k.on_snapshot(snap(sid=2, ticker="B"))
    assert k.mark_stale(1) == ["A"]
    k.on_delta(delta("0.08", "-300"))
    assert k.deltas_ignored == 1
    assert k.books["A"].yes[D("0.08")] == D("300")
    assert [r.ticker for r in k.due_rows(100.0)] == ["B"], "stale books are not written"
    k.on_snapshot(snap(sid=1, ticker="A"))
    assert k.stale_tickers() == []
    assert [r.ticker for r in k.due_rows(100.0)] == ["A"]
    assert k.due_rows(105.0) == []
