"""The real client against the project's own simulator, over real HTTP and WebSocket on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_analytics.kalshi import domain
from kalshi_analytics.kalshi.errors import KalshiApiError, KalshiProtocolError
from kalshi_analytics.kalshi.rest import KalshiRestClient, RetryPolicy
from kalshi_analytics.kalshi.signing import KalshiSigner
from kalshi_analytics.kalshi.ws import Backoff, KalshiWsClient
from kalshi_analytics.simulator import Simulator, SimulatorConfig, run_simulator
from tests.conftest import wait_until

FAST_RETRY = RetryPolicy(attempts=12, initial_wait=0.01, max_wait=0.05)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(SimulatorConfig(seed=11, markets=40, speed=120, port=0, rate_limit=None)) as s:
        yield s


@pytest.fixture
async def rest(sim: Simulator) -> AsyncIterator[KalshiRestClient]:
    async with KalshiRestClient(sim.base_url, retry=FAST_RETRY) as client:
        yield client


async def collect(ws: KalshiWsClient, until: float, stop_when=None) -> list[object]:  # type: ignore[no-untyped-def]
    """Events from ``ws`` until the deadline (or ``stop_when(events)`` holds)."""
    events: list[object] = []

    async def read() -> None:
        async for ev in ws.events():
            events.append(ev)
            if stop_when is not None and stop_when(events):
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), timeout=max(0.0, until - time.monotonic()))
    return events


def ticker_data(events: list[object]) -> bool:
    return isinstance(events[-1], domain.TickerUpdate)


# ----------------------------------------------------------------------------------------------------- REST


async def test_paging_returns_every_market_exactly_once(sim: Simulator, rest: KalshiRestClient) -> None:
    seen = [m.ticker async for m in rest.iter_markets(limit=7)]
    assert len(seen) == len(set(seen)), "a market came back twice"
    assert set(seen) == {m.ticker for m in sim.model.market_list}
    assert rest.stats["requests"] == -(-len(seen) // 7) + (1 if len(seen) % 7 == 0 else 0)


async def test_paging_survives_5xx_and_429_faults(sim: Simulator, rest: KalshiRestClient) -> None:
    sim.set_faults(server_error_fraction=0.3, rate_limit_fraction=0.2)
    seen = [m.ticker async for m in rest.iter_markets(limit=5)]
    assert sorted(seen) == sorted(m.ticker for m in sim.model.market_list)
    assert rest.stats["retries"] > 0
    assert sim.injected["server_error"] + sim.injected["rate_limited"] == rest.stats["retries"]


async def test_every_rest_endpoint_parses_into_the_domain_form(sim: Simulator, rest: KalshiRestClient) -> None:
    start = sim.model.now
    await wait_until(lambda: sim.model.now >= start + 120, "two simulated minutes: trades and candles exist")
    markets = [m async for m in rest.iter_markets(status="open")]
    assert markets
    assert all(m.status == "active" for m in markets)
    m = markets[0]
    assert (await rest.get_market(m.ticker)).ticker == m.ticker
    book = await rest.get_market_orderbook(m.ticker)
    model_market = sim.model.markets[m.ticker]
    assert book.best_yes_bid is None or 0 < book.best_yes_bid < 1
    assert [lvl.price for lvl in book.yes] == sorted(lvl.price for lvl in book.yes)
    books = await rest.get_orderbooks([x.ticker for x in markets[:3]])
    assert [b.ticker for b in books] == [x.ticker for x in markets[:3]]
    trades = [t async for t in rest.iter_trades(limit=50)]
    assert trades
    assert all(t.yes_price + t.no_price == 1 for t in trades)
    assert {t.trade_id for t in trades} <= {t.trade_id for t in sim.model.trades}
    event = await rest.get_event(m.event_ticker or "")
    assert m.ticker in {x.ticker for x in event.markets}
    series = await rest.get_series(model_market.series_ticker)
    assert series.ticker == model_market.series_ticker
    assert [s async for s in rest.iter_events()]
    now = int(sim.model.now)
    candles = await rest.get_market_candlesticks(
        model_market.series_ticker, m.ticker, start_ts=now - 3600, end_ts=now, period_interval=1
    )
    assert candles
    assert all(c.end_period_ts.second == 0 for c in candles)
    status = await rest.get_exchange_status()
    assert status.exchange_active


async def test_current_schema_fields_reach_the_domain(sim: Simulator, rest: KalshiRestClient) -> None:
    markets = [m async for m in rest.iter_markets()]
    assert markets
    assert all(m.settlement_bounds_type == "default" for m in markets)
    series = await rest.get_series_list()
    assert series
    assert all(s.category in s.categories for s in series)
    assert [s.ticker for s in await rest.get_series_list(tags=["Crypto"])] == [
        s.ticker for s in series if "Crypto" in s.tags
    ]
    status = await rest.get_exchange_status()
    assert [x.exchange_index for x in status.exchange_index_statuses] == [0]


async def test_never_traded_market_has_no_last_price(sim: Simulator, rest: KalshiRestClient) -> None:
    untraded = [m for m in sim.model.market_list if m.volume == 0 and m.status in ("initialized", "active")]
    assert untraded, "the seed lists markets nobody has traded yet"
    market = await rest.get_market(untraded[0].ticker)
    assert market.volume == 0
    assert market.last_price is None, "never traded: no last price (not a price of 0)"
    assert market.previous_price is None
    traded = next(m for m in sim.model.market_list if m.volume > 0)
    assert (await rest.get_market(traded.ticker)).last_price is not None


async def test_fee_changes_and_multivariate_events(sim: Simulator, rest: KalshiRestClient) -> None:
    assert await rest.get_series_fee_changes() == []
    history = await rest.get_series_fee_changes(show_historical=True)
    assert {c.series_ticker for c in history} == set(sim.model.series)
    assert [c async for c in rest.iter_event_fee_changes()] == []
    assert [e async for e in rest.iter_multivariate_events(series_ticker="KXBTCD")] == []
    pivot = sorted(m.updated_ts for m in sim.model.market_list)[len(sim.model.market_list) // 2]
    early = [m async for m in rest.iter_markets(max_updated_ts=int(pivot))]
    assert early
    assert all(m.updated_time is not None and m.updated_time.timestamp() <= int(pivot) for m in early)


async def test_a_400_carries_kalshis_error_code(rest: KalshiRestClient) -> None:
    with pytest.raises(KalshiApiError) as exc:
        await rest.get_markets(status="active")  # a response word, not a filter value
    assert exc.value.status == 400
    assert exc.value.code
    assert rest.stats["retries"] == 0, "a 4xx is never retried"


async def test_unknown_ticker_is_a_404_error(rest: KalshiRestClient) -> None:
    with pytest.raises(KalshiApiError) as exc:
        await rest.get_market("NO-SUCH-MARKET")
    assert exc.value.status == 404


async def test_truncated_response_is_a_typed_protocol_error(sim: Simulator, rest: KalshiRestClient) -> None:
    sim.set_faults(truncate_fraction=1.0)
    with pytest.raises(KalshiProtocolError):
        await rest.get_markets(limit=10)
    sim.reset_faults()
    assert len((await rest.get_markets(limit=10)).items) == 10  # the client is still usable


async def test_signed_requests_are_accepted_and_unsigned_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cfg = SimulatorConfig(seed=3, markets=5, port=0, require_auth=True, public_keys={"kid-1": public_pem.decode()})
    async with run_simulator(cfg) as s:
        async with KalshiRestClient(s.base_url, signer=KalshiSigner("kid-1", key), retry=FAST_RETRY) as signed:
            assert len([m async for m in signed.iter_markets()]) == len(s.model.market_list)
        async with KalshiRestClient(s.base_url, retry=FAST_RETRY) as unsigned:
            with pytest.raises(KalshiApiError) as exc:
                await unsigned.get_markets()
            assert exc.value.status == 401
        wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        async with KalshiRestClient(s.base_url, signer=KalshiSigner("kid-1", wrong_key)) as c:
            with pytest.raises(KalshiApiError) as exc:
                await c.get_markets()
            assert exc.value.status == 401


# -------------------------------------------------------------------------------------------------- WebSocket


async def test_every_ws_message_parses_with_no_bad_frames(sim: Simulator) -> None:
    tickers = [m.ticker for m in sim.model.market_list if m.status == "active"]
    async with KalshiWsClient(sim.ws_url) as ws:
        await ws.subscribe("ticker", send_initial_snapshot=True)
        await ws.subscribe("trade")
        await ws.subscribe("market_lifecycle_v2")
        await ws.subscribe("orderbook_delta", tickers)
        wanted = {domain.TickerUpdate, domain.TradeUpdate, domain.OrderbookSnapshot, domain.OrderbookDelta}
        events = await collect(ws, time.monotonic() + 10.0, stop_when=lambda evs: wanted <= {type(e) for e in evs})
        sim.settle(tickers[0], "yes", finalize=True)

        def settled_yes(evs: list[object]) -> bool:
            e = evs[-1]
            return isinstance(e, domain.MarketLifecycle) and e.market_ticker == tickers[0] and e.result == "yes"

        events += await collect(ws, time.monotonic() + 10.0, stop_when=settled_yes)
    kinds = {type(e) for e in events}
    for expected in (*wanted, domain.MarketLifecycle):
        assert expected in kinds, f"no {expected.__name__} received"
    assert ws.counters.bad_frames == 0
    assert ws.counters.gaps == 0
    settled = [e for e in events if isinstance(e, domain.MarketLifecycle) and e.market_ticker == tickers[0]]
    assert settled
    assert any(e.result == "yes" for e in settled)


async def test_every_dropped_frame_is_reported_as_a_gap(sim: Simulator) -> None:
    """With 10 % of frames dropped, the gaps the client reports are exactly the simulator's drop runs."""
    tickers = [m.ticker for m in sim.model.market_list if m.status == "active"]
    async with KalshiWsClient(sim.ws_url) as ws:
        await ws.wait_connected()
        await ws.subscribe("trade")
        await ws.subscribe("orderbook_delta", tickers)
        await ws.subscribe("ticker")
        # The first frame of a sid is its baseline (Kalshi does not promise seq 1), so drops before it are
        # undetectable by protocol: let every sid deliver once before frames start to vanish.
        sids = {sid for sub in ws.subscriptions for sid in sub.sids}
        events = await collect(
            ws,
            time.monotonic() + 5.0,
            stop_when=lambda evs: sids <= {getattr(e, "sid", None) for e in evs},
        )
        sim.set_faults(ws_drop_fraction=0.10)
        events += await collect(ws, time.monotonic() + 4.0)
        sim.pause()
        sim.reset_faults()
        events += await collect(ws, time.monotonic() + 0.5)
        conns = set(sim.hub.connections)
    (conn,) = conns
    gaps = {(e.sid, e.expected, e.received) for e in events if isinstance(e, domain.SeqGap)}

    # Expected gaps from the simulator's own log: each run of dropped seqs followed by a delivered frame.
    expected: set[tuple[int, int, int]] = set()
    by_sid: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for entry in sim.log.entries(conn=conn):
        by_sid[entry.sid].append((entry.seq, entry.dropped))
    dropped_total = 0
    for sid, frames in by_sid.items():
        run_start = None
        for seq, dropped in sorted(frames):
            if dropped:
                dropped_total += 1
                run_start = seq if run_start is None else run_start
            elif run_start is not None:
                expected.add((sid, run_start, seq))
                run_start = None
    assert dropped_total > 50, "the fault must actually drop frames for this test to mean anything"
    assert gaps == expected
    assert ws.counters.gaps == len(expected)


async def test_reconnects_and_resubscribes_after_a_forced_disconnect(sim: Simulator) -> None:
    async with KalshiWsClient(sim.ws_url, backoff=Backoff(initial=0.05, maximum=0.2)) as ws:
        await ws.wait_connected()
        await ws.subscribe("ticker")
        sub = await ws.subscribe("trade")
        first_sids = sub.sids
        sim.set_faults(ws_disconnect_every=1.0)
        events = await collect(
            ws,
            time.monotonic() + 20.0,  # returns as soon as data flows again; generous under load
            # The client re-subscribes its handles one after the other: ticker data may flow before the trade
            # handle's new sids arrive, so wait for those too.
            stop_when=lambda evs: (
                any(isinstance(e, domain.Reconnected) for e in evs)
                and isinstance(evs[-1], domain.TradeUpdate | domain.TickerUpdate)
                and evs.index(next(e for e in evs if isinstance(e, domain.Reconnected))) < len(evs) - 1
                and bool(sub.sids)
            ),
        )
        sim.reset_faults()
        kinds = [type(e) for e in events]
        assert domain.Disconnected in kinds
        reconnect_at = kinds.index(domain.Reconnected)
        assert kinds.index(domain.Disconnected) < reconnect_at
        after = [e for e in events[reconnect_at + 1 :] if isinstance(e, domain.TradeUpdate | domain.TickerUpdate)]
        assert after, "data flows again after the reconnect"
        assert first_sids, "subscribed on the first connection"
        assert sub.sids, "the same handle was re-subscribed on the new connection"
        assert ws.counters.connects >= 2
        assert len(await ws.list_subscriptions()) == 2


async def test_bad_frames_are_counted_and_skipped_and_the_loop_lives_on(sim: Simulator) -> None:
    async with KalshiWsClient(sim.ws_url) as ws:
        await ws.subscribe("ticker")
        assert await collect(ws, time.monotonic() + 10.0, stop_when=ticker_data), "ticker data flows"
        assert sim.inject_ws_frame('{"type": "ticker", "sid": 1, "msg": {"market_ticker": ') == 1
        sim.inject_ws_frame('{"type": "mystery_feed", "sid": 1, "msg": {}}')
        sim.inject_ws_frame("not json at all")
        events = await collect(
            ws,
            time.monotonic() + 10.0,
            stop_when=lambda evs: sum(isinstance(e, domain.TickerUpdate) for e in evs) > 5,
        )
        assert ws.counters.malformed_json == 2
        assert ws.counters.unknown_type == 1
        assert ws.connected
        assert sum(isinstance(e, domain.TickerUpdate) for e in events) > 5, "recording went on"


async def test_watchdog_restarts_a_silent_connection(sim: Simulator) -> None:
    async with KalshiWsClient(sim.ws_url, watchdog_timeout=1.0, backoff=Backoff(initial=0.05, maximum=0.2)) as ws:
        await ws.wait_connected()
        await ws.subscribe("ticker")
        assert await collect(ws, time.monotonic() + 10.0, stop_when=ticker_data), "ticker data flows"
        sim.set_faults(ws_silence=True)  # the socket stays open, nothing arrives, not even pings
        events = await collect(
            ws, time.monotonic() + 6.0, stop_when=lambda evs: isinstance(evs[-1], domain.Disconnected)
        )
        sim.reset_faults()
        dropped = [e for e in events if isinstance(e, domain.Disconnected)]
        assert dropped, "the silent connection was restarted"
        assert dropped[0].reason.startswith("watchdog")
        assert ws.counters.watchdog_restarts == 1
        more = await collect(ws, time.monotonic() + 5.0, stop_when=lambda evs: isinstance(evs[-1], domain.TickerUpdate))
        assert isinstance(more[-1], domain.TickerUpdate), "data flows again on the new connection"


@pytest.mark.parametrize(
    ("size", "prefix"), [(300_000, 1000), (2_000_000, 0)], ids=["read_then_refused", "too_big_to_read"]
)
async def test_an_oversized_frame_is_counted_kept_as_a_prefix_and_the_connection_recovers(
    sim: Simulator, size: int, prefix: int
) -> None:
    # 100 kB limit: 300 kB is read (a prefix kept), 2 MB is past the library's 4x bound (close 1009, nothing to keep).
    backoff = Backoff(initial=0.05, maximum=0.2)
    async with KalshiWsClient(sim.ws_url, max_frame_bytes=100_000, oversize_keep_bytes=1000, backoff=backoff) as ws:
        await ws.subscribe("ticker")
        assert await collect(ws, time.monotonic() + 10.0, stop_when=ticker_data), "ticker data flows"
        huge = '{"type":"ticker","sid":1,"msg":{"market_ticker":"' + "X" * size + '"}}'
        assert sim.inject_ws_frame(huge) == 1
        events = await collect(
            ws,
            time.monotonic() + 10.0,
            stop_when=lambda evs: any(isinstance(e, domain.Reconnected) for e in evs) and ticker_data(evs[-1:]),
        )
        dropped = [e for e in events if isinstance(e, domain.Disconnected)]
        assert dropped, "the connection was restarted"
        assert dropped[0].reason.startswith("oversized frame")
        assert any(isinstance(e, domain.Reconnected) for e in events)
        assert isinstance(events[-1], domain.TickerUpdate), "data flows again on the new connection"
        assert ws.counters.rejected == {"oversized": 1}
        (kept,) = ws.dispatcher.bad_frames
        assert kept.kind == "oversized"
        assert kept.raw == huge[:prefix]
