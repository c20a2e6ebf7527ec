"""The market model on its own: determinism, book invariants, trades, lifecycle."""

from __future__ import annotations

from kalshi_analytics.simulator import wire
from kalshi_analytics.simulator.model import BookDelta, Lifecycle, MarketModel, ModelEvent, TickerChange, TradePrint
from kalshi_analytics.simulator.units import ONE_DOLLAR, on_grid

from .conftest import START_TS


def render(ev: ModelEvent) -> str:
    if isinstance(ev, BookDelta):
        return wire.ws_delta(ev, False)
    if isinstance(ev, TradePrint):
        return wire.ws_trade(ev.trade, False)
    if isinstance(ev, TickerChange):
        return wire.ws_ticker(ev.market, ev.ts_ms, False)
    assert isinstance(ev, Lifecycle)
    return wire.ws_lifecycle(ev, False)


def recorded(seed: int, steps: list[float]) -> tuple[MarketModel, list[str]]:
    model = MarketModel(seed=seed, markets=25, start_ts=START_TS)
    out: list[str] = []
    model.listeners.append(lambda ev: out.append(render(ev)))
    for dt in steps:
        model.step(dt)
    return model, out


def test_same_seed_same_exchange_however_the_clock_is_stepped() -> None:
    a, msgs_a = recorded(5, [600.0])
    b, msgs_b = recorded(5, [1.0] * 600)
    assert [wire.market_json(m) for m in a.market_list] == [wire.market_json(m) for m in b.market_list]
    assert [wire.series_json(s) for s in a.series.values()] == [wire.series_json(s) for s in b.series.values()]
    assert len(msgs_a) > 1000
    assert msgs_a == msgs_b
    assert [t.trade_id for t in a.trades] == [t.trade_id for t in b.trades]
    _, msgs_c = recorded(6, [600.0])
    assert msgs_c[:50] != msgs_a[:50]


def test_books_never_cross_and_sit_on_the_tick_grid() -> None:
    model = MarketModel(seed=3, markets=40, start_ts=START_TS)
    structures = set()
    for _ in range(20):
        model.step(30.0)
        for m in model.market_list:
            structures.add(m.price_structure)
            if m.status != "active":
                assert not m.yes_bids
                assert not m.no_bids
                continue
            for levels in (m.yes_bids, m.no_bids):
                assert all(on_grid(p, m.ranges) for p in levels)
                assert all(c > 0 for c in levels.values())
            if m.yes_bids and m.no_bids:
                assert m.best_yes_bid() < m.yes_ask()  # best YES bid + best NO bid < $1
    assert "linear_cent" in structures
    assert structures - {"linear_cent"}  # some sub-penny markets


def test_trades_add_up_to_volume_and_stay_inside_the_book() -> None:
    model = MarketModel(seed=8, markets=20, start_ts=START_TS)
    model.step(1800.0)
    assert model.trades_generated == len(model.trades) > 50
    for m in model.market_list:
        trades = [t for t in model.trades if t.market is m]
        if not trades:
            continue
        assert sum(t.count for t in trades) == m.volume
        assert m.last_price == trades[-1].yes_price
        assert all(0 < t.yes_price < ONE_DOLLAR and on_grid(t.yes_price, m.ranges) for t in trades)
    assert len({t.trade_id for t in model.trades}) == len(model.trades)


def test_markets_close_get_determined_then_finalize_and_new_ones_are_listed() -> None:
    model = MarketModel(seed=2, markets=15, start_ts=START_TS, settlement_timer_seconds=(60, 120))
    events: list[Lifecycle] = []
    model.listeners.append(lambda ev: events.append(ev) if isinstance(ev, Lifecycle) else None)
    listed_before = len(model.market_list)
    model.step(3600.0)
    settled = [e.market for e in events if e.event_type == "settled"]
    assert settled, "some market must have run its whole life in one simulated hour"
    for m in settled:
        kinds = [e.event_type for e in events if e.market is m]
        assert kinds.index("determined") < kinds.index("settled")
        assert m.status == "finalized"
        assert m.result in ("yes", "no")
        assert m.determined_ts is not None
        assert m.settled_ts is not None
        assert m.close_ts <= m.determined_ts
        assert m.settled_ts - m.determined_ts == m.settlement_timer
    assert len(model.market_list) > listed_before
    created = {e.market.ticker for e in events if e.event_type == "created"}
    activated = {e.market.ticker for e in events if e.event_type == "activated"}
    assert created
    assert created <= activated | {m.ticker for m in model.market_list if m.status == "initialized"}


def test_results_follow_the_latent_probability() -> None:
    model = MarketModel(seed=4, markets=40, start_ts=START_TS, settlement_timer_seconds=(1, 2))
    model.step(2 * 3600.0)
    done = [m for m in model.market_list if m.status == "finalized" and m.determined_ts is not None]
    assert len(done) > 10
    yes = sum(m.result == "yes" for m in done)
    assert 0 < yes < len(done)


def test_force_settle_mid_stream() -> None:
    model = MarketModel(seed=9, markets=10, start_ts=START_TS)
    model.step(10.0)
    m = next(m for m in model.market_list if m.status == "active")
    events: list[str] = []
    model.listeners.append(lambda ev: events.append(ev.event_type) if isinstance(ev, Lifecycle) else None)
    model.force_settle(m.ticker, "no")
    assert m.status == "determined"
    assert m.result == "no"
    assert not m.yes_bids
    assert not m.no_bids
    model.step(m.settlement_timer + 1.0)
    assert m.status == "finalized"
    assert events[:3] == ["close_date_updated", "determined", "settled"]
