"""The WebSocket side over a real socket: commands, seq, book replay, drops, disconnects, lifecycle, legacy."""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from kalshi_analytics.simulator import Simulator, run_simulator
from kalshi_analytics.simulator.units import count_decimal, price_decimal

from .conftest import collect, config, recv, send

Book = dict[tuple[str, str], dict[Decimal, Decimal]]


def open_tickers(sim: Simulator, n: int) -> list[str]:
    active = [m for m in sim.model.market_list if m.status == "active" and m.close_ts > sim.model.now + 600]
    return [m.ticker for m in sorted(active, key=lambda m: -m.trade_rate)[:n]]


def apply(book: Book, msg: dict[str, Any]) -> None:
    body = msg["msg"]
    t = body["market_ticker"]
    if msg["type"] == "orderbook_snapshot":
        for side in ("yes", "no"):
            book[(t, side)] = {Decimal(p): Decimal(c) for p, c in body.get(f"{side}_dollars_fp", [])}
    elif msg["type"] == "orderbook_delta":
        levels = book[(t, body["side"])]
        price = Decimal(body["price_dollars"])
        levels[price] = levels.get(price, Decimal(0)) + Decimal(body["delta_fp"])
        if levels[price] <= 0:
            del levels[price]


async def drain_until_quiet(ws: ClientConnection, into: list[dict[str, Any]], quiet: float = 0.3) -> None:
    into.extend(await collect(ws, quiet))
    while batch := await collect(ws, quiet):
        into.extend(batch)


async def test_subscribe_snapshot_then_deltas_in_seq_order(sim: Simulator) -> None:
    tickers = open_tickers(sim, 3)
    async with websockets.connect(sim.ws_url) as ws:
        await send(
            ws, {"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": tickers}}
        )
        ack = await recv(ws)
        assert ack == {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}}
        msgs = [await recv(ws) for _ in range(3)]
        assert [m["type"] for m in msgs] == ["orderbook_snapshot"] * 3
        assert [m["msg"]["market_ticker"] for m in msgs] == tickers
        msgs += await collect(ws, 1.0)
        deltas = msgs[3:]
        assert deltas
        assert {m["type"] for m in deltas} == {"orderbook_delta"}
        assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1))
        assert {m["sid"] for m in msgs} == {1}
        d = deltas[0]["msg"]
        assert set(d) == {"market_ticker", "market_id", "price_dollars", "delta_fp", "side", "ts", "ts_ms"}
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", d["ts"])
        assert isinstance(d["ts_ms"], int)
        assert re.match(r"^-?\d+\.\d{2}$", d["delta_fp"])
        assert re.match(r"^\d\.\d{4}$", d["price_dollars"])


async def test_replaying_snapshot_and_deltas_rebuilds_the_models_book(sim: Simulator) -> None:
    tickers = open_tickers(sim, 6)
    async with websockets.connect(sim.ws_url) as ws:
        await send(
            ws, {"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": tickers}}
        )
        msgs = await collect(ws, 1.5)
        sim.pause()
        try:
            await drain_until_quiet(ws, msgs)
            book: Book = defaultdict(dict)
            for m in msgs[1:]:
                apply(book, m)
            assert len(msgs) > 50
            for t in tickers:
                model = sim.model.markets[t]
                for side in ("yes", "no"):
                    expected = {price_decimal(p): count_decimal(c) for p, c in model.book(side)}  # type: ignore[arg-type]
                    assert book[(t, side)] == expected, (t, side)
        finally:
            sim.resume()


async def test_ticker_trade_and_lifecycle_messages(sim: Simulator) -> None:
    tickers = open_tickers(sim, 8)
    async with websockets.connect(sim.ws_url) as ws:
        await send(
            ws,
            {
                "id": 7,
                "cmd": "subscribe",
                "params": {"channels": ["ticker", "trade"], "market_tickers": tickers, "send_initial_snapshot": True},
            },
        )
        msgs = await collect(ws, 2.0)
    acks = [m for m in msgs if m["type"] == "subscribed"]
    assert [(a["id"], a["msg"]["channel"], a["msg"]["sid"]) for a in acks] == [(7, "ticker", 1), (7, "trade", 2)]
    msgs = [m for m in msgs if m["type"] != "subscribed"]
    initial = [m for m in msgs[: len(tickers)] if m["sid"] == 1]
    assert [m["msg"]["market_ticker"] for m in initial] == tickers  # send_initial_snapshot
    by_sid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for m in msgs:
        by_sid[m["sid"]].append(m)
    for seqs in by_sid.values():
        assert [m["seq"] for m in seqs] == list(range(1, len(seqs) + 1))
    tick = next(m["msg"] for m in msgs if m["type"] == "ticker")
    assert set(tick) >= {
        "market_ticker", "price_dollars", "yes_bid_dollars", "yes_ask_dollars", "volume_fp", "open_interest_fp",
        "dollar_volume", "dollar_open_interest", "yes_bid_size_fp", "yes_ask_size_fp", "last_trade_size_fp",
        "ts", "ts_ms", "time",
    }  # fmt: skip
    assert isinstance(tick["dollar_volume"], int)
    trades = [m["msg"] for m in msgs if m["type"] == "trade"]
    assert trades
    tr = trades[0]
    assert set(tr) >= {
        "trade_id", "market_ticker", "yes_price_dollars", "no_price_dollars", "count_fp", "taker_side",
        "taker_outcome_side", "taker_book_side", "is_block_trade", "ts", "ts_ms",
    }  # fmt: skip
    assert Decimal(tr["yes_price_dollars"]) + Decimal(tr["no_price_dollars"]) == 1
    model_ids = {t.trade_id for t in sim.model.trades}
    assert {t["trade_id"] for t in trades} <= model_ids


async def test_command_errors(sim: Simulator) -> None:
    ticker = open_tickers(sim, 1)[0]
    async with websockets.connect(sim.ws_url) as ws:

        async def error_code(cmd: dict[str, Any] | str) -> int:
            await send(ws, cmd)
            while True:
                m = await recv(ws)
                if m["type"] == "error":
                    return int(m["msg"]["code"])

        assert await error_code("{not json") == 1
        assert await error_code({"id": 2, "cmd": "dance"}) == 5
        assert await error_code({"id": 3, "cmd": "subscribe"}) == 2
        assert await error_code({"id": 4, "cmd": "subscribe", "params": {}}) == 3
        assert await error_code({"id": 5, "cmd": "subscribe", "params": {"channels": ["tv"]}}) == 8
        assert await error_code({"id": 6, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}) == 14
        missing = {"id": 7, "cmd": "subscribe", "params": {"channels": ["trade"], "market_tickers": ["NOPE-1"]}}
        assert await error_code(missing) == 16
        assert await error_code({"id": 8, "cmd": "unsubscribe", "params": {}}) == 4
        assert await error_code({"id": 9, "cmd": "unsubscribe", "params": {"sids": [99]}}) == 7
        await send(ws, {"id": 10, "cmd": "subscribe", "params": {"channels": ["trade"]}})
        assert (await recv(ws))["type"] == "subscribed"
        assert await error_code({"id": 11, "cmd": "subscribe", "params": {"channels": ["trade"]}}) == 6
        two = {"id": 12, "cmd": "update_subscription", "params": {"sids": [1, 2], "action": "add_markets"}}
        assert await error_code(two) == 12
        no_action = {"id": 13, "cmd": "update_subscription", "params": {"sid": 1, "market_tickers": [ticker]}}
        assert await error_code(no_action) == 15
        bad_action = {
            "id": 14,
            "cmd": "update_subscription",
            "params": {"sid": 1, "action": "x", "market_tickers": [ticker]},
        }
        assert await error_code(bad_action) == 13
        assert (
            await error_code({"id": 15, "cmd": "update_subscription", "params": {"sid": 1, "action": "add_markets"}})
            == 14
        )
        await send(ws, {"id": 16, "cmd": "list_subscriptions"})
        while (m := await recv(ws)).get("id") != 16:
            pass
        assert m == {"id": 16, "type": "ok", "msg": [{"channel": "trade", "sid": 1}]}


async def test_update_subscription_and_unsubscribe(sim: Simulator) -> None:
    a, b = open_tickers(sim, 2)
    async with websockets.connect(sim.ws_url) as ws:
        await send(
            ws, {"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": [a]}}
        )
        msgs = await collect(ws, 0.3)
        await send(
            ws,
            {
                "id": 2,
                "cmd": "update_subscription",
                "params": {"sids": [1], "market_tickers": [b], "action": "add_markets"},
            },
        )
        msgs += await collect(ws, 0.5)
        ok = next(m for m in msgs if m.get("id") == 2)
        assert ok["type"] == "ok"
        assert ok["sid"] == 1
        assert sorted(ok["msg"]["market_tickers"]) == sorted([a, b])
        after = msgs[msgs.index(ok) + 1 :]
        assert any(m["type"] == "orderbook_snapshot" and m["msg"]["market_ticker"] == b for m in after)
        await send(
            ws,
            {
                "id": 3,
                "cmd": "update_subscription",
                "params": {"sid": 1, "market_tickers": [a], "action": "get_snapshot"},
            },
        )
        msgs += await collect(ws, 0.5)
        ok3 = next(m for m in msgs if m.get("id") == 3)
        snaps = [m for m in msgs[msgs.index(ok3) :] if m["type"] == "orderbook_snapshot"]
        assert snaps
        assert snaps[0]["msg"]["market_ticker"] == a
        await send(
            ws,
            {
                "id": 4,
                "cmd": "update_subscription",
                "params": {"sid": 1, "market_tickers": [a], "action": "delete_markets"},
            },
        )
        msgs += await collect(ws, 0.5)
        ok4 = next(m for m in msgs if m.get("id") == 4)
        assert ok4["msg"]["market_tickers"] == [b]
        data = [m for m in msgs if "seq" in m and m["type"] not in ("ok", "unsubscribed")]
        assert [m["seq"] for m in data] == list(range(1, len(data) + 1))
        await send(ws, {"id": 5, "cmd": "unsubscribe", "params": {"sids": [1]}})
        rest = await collect(ws, 0.5)
        unsub = next(m for m in rest if m.get("type") == "unsubscribed")
        assert unsub["id"] == 5
        assert unsub["sid"] == 1
        assert all(m.get("sid") != 1 or m["type"] != "orderbook_delta" for m in rest[rest.index(unsub) + 1 :])


async def test_dropped_frames_are_exactly_the_gaps_the_client_sees(sim: Simulator) -> None:
    tickers = open_tickers(sim, 6)
    sim.set_faults(ws_drop_fraction=0.1)
    try:
        async with websockets.connect(sim.ws_url) as ws:
            await send(
                ws,
                {
                    "id": 1,
                    "cmd": "subscribe",
                    "params": {"channels": ["orderbook_delta", "trade", "ticker"], "market_tickers": tickers},
                },
            )
            conn_id = max(sim.hub.connections)
            msgs = await collect(ws, 1.5)
            sim.pause()
            await drain_until_quiet(ws, msgs)
            sim.resume()
    finally:
        sim.set_faults(ws_drop_fraction=0.0)
    seen: dict[int, set[int]] = defaultdict(set)
    for m in msgs:
        if "seq" in m:
            seen[m["sid"]].add(m["seq"])
    assert len(seen) == 3
    total_dropped = 0
    for sid, seqs in seen.items():
        logged = list(sim.log.entries(conn=conn_id, sid=sid))
        assert [e.seq for e in logged] == list(range(1, len(logged) + 1))
        dropped = {e.seq for e in logged if e.dropped}
        sent = {e.seq for e in logged if not e.dropped}
        assert sent == seqs
        gaps = set(range(1, max(seqs) + 1)) - seqs
        assert gaps == {s for s in dropped if s < max(seqs)}
        total_dropped += len(dropped)
    assert 0.05 < total_dropped / sum(len(s) + 0.0 for s in seen.values()) < 0.2
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{sim.admin_url}/log", params={"conn": conn_id, "dropped": "true"})).json()
    assert len(body["entries"]) == total_dropped
    assert set(body["entries"][0]) == {"conn", "sid", "seq", "type", "market_ticker", "trade_id", "dropped"}


async def read_forever(ws: ClientConnection) -> None:
    for _ in range(100_000):
        await asyncio.wait_for(ws.recv(), 3.0)


async def test_disconnect_fault_closes_the_socket(sim: Simulator) -> None:
    sim.set_faults(ws_disconnect_every=0.3)
    try:
        async with websockets.connect(sim.ws_url) as ws:
            await send(ws, {"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"]}})
            with pytest.raises(websockets.ConnectionClosed):
                await read_forever(ws)
            assert ws.close_code == 1011
    finally:
        sim.set_faults(ws_disconnect_every=None)


async def test_silence_keeps_the_socket_open_but_sends_nothing(sim: Simulator) -> None:
    async with websockets.connect(sim.ws_url, ping_interval=None) as ws:
        await send(
            ws,
            {
                "id": 1,
                "cmd": "subscribe",
                "params": {"channels": ["ticker", "orderbook_delta"], "market_tickers": open_tickers(sim, 10)},
            },
        )
        assert await collect(ws, 0.3)
        sim.set_faults(ws_silence=True)
        try:
            await collect(ws, 0.1)  # frames already in flight
            assert await collect(ws, 0.8) == []
            proto = next(iter(sim.hub.connections.values())).protocol
            assert proto is None or proto.ping_timer is None  # no keep-alive pings either
            await ws.ping()  # the TCP connection itself is still there
        finally:
            sim.set_faults(ws_silence=False)
        assert await collect(ws, 0.5)


async def test_settling_a_market_mid_stream() -> None:
    async with run_simulator(config(markets=10, settlement_timer_seconds=(3, 5), speed=20)) as s:
        ticker = open_tickers(s, 1)[0]
        async with websockets.connect(s.ws_url) as ws, httpx.AsyncClient() as http:
            await send(ws, {"id": 1, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}})
            await send(
                ws,
                {"id": 2, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": [ticker]}},
            )
            await collect(ws, 0.2)
            r = await http.post(f"{s.admin_url}/settle/{ticker}", params={"result": "yes"})
            assert r.status_code == 200
            assert r.json()["market"]["status"] == "determined"
            msgs = await collect(ws, 1.5)
            life = [
                m["msg"] for m in msgs if m["type"] == "market_lifecycle_v2" and m["msg"]["market_ticker"] == ticker
            ]
            assert [e["event_type"] for e in life] == ["close_date_updated", "determined", "settled"]
            assert life[1]["result"] == "yes"
            assert life[1]["settlement_value"] == "1.0000"
            assert isinstance(life[1]["determination_ts"], int)
            assert isinstance(life[2]["settled_ts"], int)
            book: Book = defaultdict(dict)
            for m in msgs:
                if m["type"].startswith("orderbook"):
                    apply(book, m)
            assert not book[(ticker, "yes")]  # resting orders cancelled at close
            assert not book[(ticker, "no")]
            market = (await http.get(f"{s.base_url}/markets/{ticker}")).json()["market"]
            assert market["status"] == "finalized"
            assert market["result"] == "yes"


async def test_markets_close_on_their_own_and_new_ones_are_listed() -> None:
    async with run_simulator(config(markets=12, speed=2400, settlement_timer_seconds=(5, 10))) as s:
        first_close = min(m.close_ts for m in s.model.market_list if m.status == "active") - s.model.now
        assert first_close < 2 * 2400  # this seed closes a market within the first two real seconds
        async with websockets.connect(s.ws_url) as ws:
            await send(ws, {"id": 1, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}})
            msgs = await collect(ws, 3.5)
    kinds: dict[str, list[str]] = defaultdict(list)
    for m in msgs:
        if m["type"] == "market_lifecycle_v2":
            kinds[m["msg"]["market_ticker"]].append(m["msg"]["event_type"])
    assert any(k[-2:] == ["determined", "settled"] for k in kinds.values())
    assert any(k[:1] == ["created"] for k in kinds.values())


async def test_same_seed_same_first_messages() -> None:
    async def first(n: int) -> list[str]:
        cfg = config(seed=21, markets=15, speed=600, start_paused=True)
        async with run_simulator(cfg) as s, websockets.connect(s.ws_url) as ws:
            await send(
                ws,
                {"id": 1, "cmd": "subscribe", "params": {"channels": ["trade", "ticker", "market_lifecycle_v2"]}},
            )
            await collect(ws, 0.2)
            s.resume()
            out: list[str] = []
            while len(out) < n:
                out.append(json.dumps(await recv(ws, 5.0), sort_keys=True))
            return out

    a = await first(150)
    b = await first(150)
    assert a == b


async def test_legacy_format_uses_integer_cents() -> None:
    async with run_simulator(config(markets=10, legacy_format=True)) as s:
        ticker = open_tickers(s, 1)[0]
        async with httpx.AsyncClient(base_url=s.base_url) as http:
            m = (await http.get(f"/markets/{ticker}")).json()["market"]
            assert isinstance(m["yes_bid"], int)
            assert isinstance(m["volume"], int)
            assert "volume_fp" not in m
            assert m["yes_bid_dollars"] == f"{m['yes_bid'] / 100:.4f}"
            book = (await http.get(f"/markets/{ticker}/orderbook")).json()
            assert "orderbook_fp" not in book
            assert all(isinstance(p, int) and isinstance(c, int) for p, c in book["orderbook"]["yes"])
            settled = (await http.get("/markets", params={"status": "settled"})).json()["markets"]
            assert {x["status"] for x in settled} == {"settled"}  # the cents-era name of finalized
        async with websockets.connect(s.ws_url) as ws:
            await send(
                ws,
                {
                    "id": 1,
                    "cmd": "subscribe",
                    "params": {
                        "channels": ["orderbook_delta", "ticker", "trade"],
                        "market_tickers": open_tickers(s, 5),
                    },
                },
            )
            msgs = await collect(ws, 1.5)
    snap = next(m["msg"] for m in msgs if m["type"] == "orderbook_snapshot")
    assert all(isinstance(p, int) and isinstance(c, int) for p, c in snap.get("yes", []))
    delta = next(m["msg"] for m in msgs if m["type"] == "orderbook_delta")
    assert isinstance(delta["price"], int)
    assert isinstance(delta["delta"], int)
    assert "delta_fp" not in delta
    tick = next(m["msg"] for m in msgs if m["type"] == "ticker")
    assert isinstance(tick["yes_bid"], int)
    assert isinstance(tick["volume"], int)
    trades = [m["msg"] for m in msgs if m["type"] == "trade"]
    if trades:
        assert isinstance(trades[0]["yes_price"], int)
        assert isinstance(trades[0]["count"], int)
