"""WebSocket client logic without a server: seq tracking, sharding, frame dispatch, backoff, subscription state."""

from __future__ import annotations

import asyncio
import json

import pytest

from kalshi_analytics.kalshi import (
    Backoff,
    CommandError,
    FrameDispatcher,
    KalshiWsClient,
    KalshiWsCommandError,
    KalshiWsConnectionError,
    OrderbookDelta,
    SeqGap,
    SeqTracker,
    Subscribed,
    TickerUpdate,
    shard_tickers,
)
from kalshi_analytics.kalshi.ws import EventBuffer


def delta(sid: int, seq: int, ticker: str = "X") -> str:
    msg = {"market_ticker": ticker, "price_dollars": "0.50", "delta_fp": "1.00", "side": "yes"}
    return json.dumps({"type": "orderbook_delta", "sid": sid, "seq": seq, "msg": msg})


# ---------------------------------------------------------------------------------------------------- seq tracker
def test_seq_tracker_baseline_gaps_and_per_sid_counters() -> None:
    t = SeqTracker()
    assert t.observe(1, 5) is None  # first frame of a sid is its baseline
    assert t.observe(1, 6) is None
    assert t.observe(2, 1) is None  # other sid, own counter
    assert t.observe(1, 9) == (7, 9)  # gap: expected 7, got 9
    assert t.observe(1, 10) is None  # the gap frame became the baseline
    assert t.observe(1, 10) == (11, 10)  # a repeat / regression is reported too
    assert t.observe(2, 2) is None


def test_seq_tracker_restart_after_reconnect_and_forget() -> None:
    t = SeqTracker()
    for seq in (1, 2, 3):
        assert t.observe(1, seq) is None
    t.reset()  # new connection: sids and seqs restart
    assert t.observe(1, 1) is None
    assert t.observe(1, 2) is None
    t.forget(1)
    assert t.last(1) is None
    assert t.observe(1, 40) is None


def test_seq_tracker_command_answers_move_the_baseline_softly() -> None:
    t = SeqTracker()
    t.observe(4, 10)
    t.advance(4, 11)  # an ok carrying seq 11
    assert t.observe(4, 11) is None  # ok did not consume a number
    t.advance(4, 12)
    assert t.observe(4, 13) is None  # ok consumed 12
    assert t.observe(4, 15) == (14, 15)


# ------------------------------------------------------------------------------------------------------- sharding
async def test_event_buffer_hands_over_batches_in_order_and_holds_the_reader_when_full() -> None:
    buf = EventBuffer(limit=3)
    for i in range(3):
        await buf.put(i)
    assert buf.full()
    blocked = asyncio.create_task(buf.put(3))  # the reader waits: nothing is dropped
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert await buf.take() == [0, 1, 2]
    await asyncio.wait_for(blocked, 1)
    buf.push(4)
    assert await buf.take() == [3, 4]
    waiting = asyncio.create_task(buf.take())  # the consumer waits for the next item
    await asyncio.sleep(0.01)
    assert not waiting.done()
    buf.push(5)
    assert await asyncio.wait_for(waiting, 1) == [5]
    for i in range(4):
        buf.push(i)  # past the limit: for the end marker, which must never wait
    assert len(buf) == 4


def test_shard_tickers() -> None:
    tickers = [f"T{i}" for i in range(1201)]
    shards = shard_tickers(tickers, 500)
    assert [len(s) for s in shards] == [500, 500, 201]
    assert [t for s in shards for t in s] == tickers
    assert shard_tickers(["A", "B", "A", "C"], 2) == [["A", "B"], ["C"]]
    assert shard_tickers([], 500) == []
    with pytest.raises(ValueError, match=">= 1"):
        shard_tickers(["A"], 0)


# ------------------------------------------------------------------------------------------------ frame dispatcher
async def test_dispatcher_reports_gap_then_delivers_the_frame() -> None:
    d = FrameDispatcher()
    assert d.handle('{"id":1,"type":"subscribed","msg":{"channel":"orderbook_delta","sid":2}}') == [
        Subscribed(id=1, sid=2, channel="orderbook_delta")
    ]
    assert len(d.handle(delta(2, 1))) == 1
    assert len(d.handle(delta(2, 2))) == 1
    gap, frame = d.handle(delta(2, 5))
    assert isinstance(gap, SeqGap)
    assert (gap.sid, gap.channel, gap.expected, gap.received) == (2, "orderbook_delta", 3, 5)
    assert isinstance(frame, OrderbookDelta)
    assert frame.seq == 5
    assert d.counters.gaps == 1
    assert d.counters.messages == 3
    d.new_connection()  # after a reconnect seq 1 is a fresh baseline, not a gap
    assert [type(e) for e in d.handle(delta(2, 1))] == [OrderbookDelta]


async def test_dispatcher_counts_and_skips_bad_frames_keeping_raw() -> None:
    d = FrameDispatcher()
    long_garbage = '{"type":"ticker","msg":' + "x" * 2000
    bad = [long_garbage, '{"type":"mystery","msg":{}}', '{"type":"ticker","msg":{"price":1}}', b"\x00\xff"]
    for raw in bad:
        assert d.handle(raw) == []
    assert (d.counters.malformed_json, d.counters.unknown_type, d.counters.invalid) == (2, 1, 1)
    assert d.counters.bad_frames == 4
    assert d.bad_frames[0].raw == long_garbage  # full text kept
    ticker = '{"type":"ticker","sid":1,"msg":{"market_ticker":"A","price_dollars":"0.5"}}'
    assert isinstance(d.handle(ticker)[0], TickerUpdate)  # and the loop goes on


async def test_dispatcher_resolves_commands_by_id() -> None:
    d = FrameDispatcher()
    loop = asyncio.get_running_loop()
    sub_fut, err_fut, ok_fut = loop.create_future(), loop.create_future(), loop.create_future()
    d.pending.update({7: sub_fut, 8: err_fut, 9: ok_fut})
    assert d.handle('{"id":7,"type":"subscribed","msg":{"channel":"ticker","sid":3}}') == []
    assert sub_fut.result() == Subscribed(id=7, sid=3, channel="ticker")
    assert d.handle('{"id":8,"type":"error","msg":{"code":6,"msg":"Already subscribed"}}') == []
    with pytest.raises(KalshiWsCommandError) as info:
        err_fut.result()
    assert (info.value.code, info.value.message, info.value.command_id) == (6, "Already subscribed", 8)
    assert d.handle('{"id":9,"sid":3,"seq":4,"type":"ok","msg":{"market_tickers":["A"]}}') == []
    assert ok_fut.result().market_tickers == ("A",)
    assert d.tracker.last(3) == 4
    # an error nobody waits for (e.g. slow-consumer overflow) reaches the consumer
    (unsolicited,) = d.handle('{"type":"error","msg":{"code":25,"msg":"Subscription buffer overflow"}}')
    assert isinstance(unsolicited, CommandError)
    assert unsolicited.code in KalshiWsCommandError.TERMINAL_CODES
    assert d.counters.unsolicited_errors == 1
    pending = loop.create_future()
    d.pending[10] = pending
    d.fail_pending("connection lost")
    with pytest.raises(KalshiWsConnectionError):
        pending.result()


# -------------------------------------------------------------------------------------------------------- backoff
def test_backoff_grows_is_jittered_and_capped() -> None:
    low, high = Backoff(initial=1, maximum=8, rng=lambda: 0.0), Backoff(initial=1, maximum=8, rng=lambda: 1.0)
    assert [low.delay(n) for n in range(5)] == [0.5, 1, 2, 4, 4]
    assert [high.delay(n) for n in range(5)] == [1, 2, 4, 8, 8]
    real = Backoff(initial=0.5, maximum=30)
    assert all(0.25 <= real.delay(0) <= 0.5 for _ in range(100))
    assert all(15 <= real.delay(50) <= 30 for _ in range(100))


# -------------------------------------------------------------------------------------- subscriptions (offline)
async def test_subscriptions_are_declared_sharded_and_kept_while_offline() -> None:
    ws = KalshiWsClient("ws://127.0.0.1:9/trade-api/ws/v2", max_tickers_per_command=3)
    assert not ws.connected
    book = await ws.subscribe("orderbook_delta", ["A", "B", "C", "D", "E", "A"])
    assert book.tickers == ("A", "B", "C", "D", "E")
    assert book.sids == ()  # not connected: made on connect
    params = [book._command_params(s) for s in book._shards]
    assert params == [
        {"channels": ["orderbook_delta"], "use_yes_price": False, "market_tickers": ["A", "B", "C"]},
        {"channels": ["orderbook_delta"], "use_yes_price": False, "market_tickers": ["D", "E"]},
    ]
    await ws.add_markets(book, ["E", "F", "G", "H"])
    assert [s.tickers for s in book._shards] == [["A", "B", "C"], ["D", "E", "F"], ["G", "H"]]
    await ws.remove_markets(book, ["A", "B", "C", "G"])
    assert [s.tickers for s in book._shards] == [["D", "E", "F"], ["H"]]
    await ws.request_snapshot(book)  # nothing to do offline
    everything = await ws.subscribe("ticker", send_initial_snapshot=True)
    assert everything.tickers is None
    assert everything._command_params(everything._shards[0]) == {"channels": ["ticker"], "send_initial_snapshot": True}
    assert ws.subscriptions == (book, everything)
    await ws.unsubscribe(everything)
    assert ws.subscriptions == (book,)
    with pytest.raises(KalshiWsConnectionError, match="not connected"):
        await ws.list_subscriptions()
    await ws.close()
    assert [e async for e in ws.events()] == []
