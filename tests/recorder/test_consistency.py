"""The as-of rule of :mod:`kalshi_analytics.recorder.consistency`: the high-water mark, case by case."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from kalshi_analytics.kalshi.answer_time import answer_time
from kalshi_analytics.recorder.consistency import SnapshotGate
from kalshi_analytics.recorder.rows import MarketRow, SinkItem, SnapshotRow

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TICKER = "KXTEST-26NOV28-T1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stream(seconds: float, volume: int, bid: str = "0.40") -> SnapshotRow:
    """A ``ticker`` frame: exchange time, received a moment later, no status."""
    return SnapshotRow(
        TICKER, at(seconds), "websocket", at(seconds + 0.05), yes_bid=Decimal(bid), volume=Decimal(volume)
    )


def rest(seconds: float, volume: int, status: str = "active", bid: str = "0.40", source: str = "poll") -> SnapshotRow:
    """A REST answer: only our receipt time."""
    return SnapshotRow(
        TICKER, at(seconds), source, at(seconds), yes_bid=Decimal(bid), volume=Decimal(volume), status=status
    )


def gate(**kw: object) -> tuple[SnapshotGate, list[SinkItem], list[str]]:
    written: list[SinkItem] = []
    forgotten: list[str] = []

    async def put(item: SinkItem) -> None:
        written.append(item)

    g = SnapshotGate(put, rest_max_age=15.0, on_held_back=forgotten.append, **kw)  # type: ignore[arg-type]
    return g, written, forgotten


def test_a_cached_poll_older_than_the_stream_never_shows_as_a_newer_state() -> None:
    g, _, forgotten = gate()
    assert g.check(rest(0, 1200)) is None  # nothing recorded yet: the poll is the first state
    assert g.check(stream(20, 1571)) is None
    # The series: 1225 (poll) → 1571 (websocket) → 1259 (poll, a cached answer)
    assert g.check(rest(21, 1259)) == "volume_regression"
    # Same volume, other quote: may predate the frame, and the stream is speaking, so it is authoritative.
    asyncio.run(g.put(rest(22, 1571, bid="0.35")))
    assert g.held_back["stream_authoritative"] == 1
    assert forgotten == [TICKER], "a held-back answer that differs is polled again"
    assert g.check(rest(23, 1571, bid="0.40")) == "unchanged"


def test_status_never_goes_back_and_a_later_status_is_news_even_while_the_stream_speaks() -> None:
    g, _, _ = gate()
    assert g.check(rest(-30, 5)) is None
    assert g.check(stream(0, 10)) is None
    assert g.check(rest(1, 10, status="determined")) is None  # the ticker channel carries no status
    assert g.check(rest(2, 10, status="active", bid="0.41")) == "status_regression"
    assert g.check(rest(40, 10, status="active", bid="0.41")) == "status_regression"
    assert g.check(rest(41, 10, status="finalized")) is None


def test_lifecycle_statuses_raise_the_floor_and_stale_markets_rows_lose_their_status() -> None:
    g, written, _ = gate()

    async def run() -> None:
        await g.put(MarketRow(TICKER, status="determined"))
        await g.put(rest(5, 10, status="closed"))  # a cached answer from before the determination
        await g.put(MarketRow(TICKER, event_ticker="E", status="active", volume=Decimal(10)))

    asyncio.run(run())
    assert [type(w).__name__ for w in written] == ["MarketRow", "MarketRow"]
    assert written[1].status is None  # type: ignore[union-attr]
    assert written[1].event_ticker == "E"  # type: ignore[union-attr]
    assert g.held_back == {"status_regression": 1, "market_status_regression": 1}


def test_rest_after_rest_waits_for_an_answer_that_cannot_be_stale_unless_volume_proves_it() -> None:
    g, _, _ = gate()
    assert g.check(rest(0, 100)) is None
    assert g.check(rest(5, 100, bid="0.45")) == "stale"  # could be an older cached copy than the one at 0
    assert g.check(rest(6, 101, bid="0.45")) is None  # volume only grows: this answer is newer
    assert g.check(rest(11, 101, bid="0.47")) == "stale"
    assert g.check(rest(21.5, 101, bid="0.47")) is None  # made at least 15 s after the last row


def test_volume_news_from_rest_only_when_the_stream_is_silent() -> None:
    g, _, _ = gate()
    assert g.check(rest(90, 30)) is None
    assert g.check(stream(100, 40)) is None
    assert g.check(rest(110, 45)) == "stream_authoritative"
    assert g.check(rest(116, 45)) is None  # the stream said nothing for 15 s (e.g. it lost the frame)


def test_frames_in_flight_behind_a_poll_land_in_the_past_only_if_they_fit() -> None:
    g, _, _ = gate()
    assert g.check(stream(100, 40)) is None
    assert g.check(rest(120, 50)) is None
    assert g.check(stream(110, 45)) is None  # between 40 and 50
    assert g.check(stream(111, 60)) == "late"  # would put 60 before the 50 at 120
    assert g.check(stream(105, 39)) == "volume_regression"
    assert g.check(rest(119, 50)) == "older_than_recorded"


def test_a_row_older_than_the_window_is_late_and_open_interest_may_fall() -> None:
    g, _, _ = gate(window=4)
    for i in range(4):
        assert g.check(stream(10 + i, 10 + i)) is None
    assert g.check(stream(5, 9)) == "late"
    falling_oi = stream(20, 20)._replace(open_interest=Decimal(1))
    assert g.check(stream(19, 19)._replace(open_interest=Decimal(5))) is None
    assert g.check(falling_oi) is None


def test_held_back_rows_are_counted_by_reason_and_summarised() -> None:
    g, written, _ = gate()

    async def run() -> None:
        await g.put(stream(0, 10))
        for i in range(5):
            await g.put(rest(1 + i, 5))

    asyncio.run(run())
    assert len(written) == 1
    assert g.metrics.value("kalshi_recorder_snapshots_held_back_total", {"reason": "volume_regression"}) == 5


def test_a_rest_answer_dated_by_the_server_is_placed_by_that_time() -> None:
    g, _, _ = gate()
    assert g.check(rest(0, 10)) is None
    assert g.check(stream(100, 40)) is None
    dated = rest(105, 40, bid="0.45")._replace(ts=at(101))  # Date − Age: made after the last frame
    assert g.check(dated) is None
    cached = rest(106, 40, bid="0.46")._replace(ts=at(99))  # made before what the stream gave
    assert g.check(cached) == "older_than_recorded"


def test_answer_time_is_date_minus_age() -> None:
    made = answer_time({"date": "Sat, 28 Nov 2026 12:00:10 GMT", "age": "7"})
    assert made == at(3)
    assert answer_time({"date": "Sat, 28 Nov 2026 12:00:10 GMT"}) == at(10)
    assert answer_time({}) is None
    assert answer_time({"date": "not a date"}) is None
