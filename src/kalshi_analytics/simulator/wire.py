"""Kalshi's JSON shapes for the simulator's objects: the current fixed-point format and the legacy cents format.

REST bodies are built as dicts; WebSocket message bodies are built as JSON text directly (tickers are
``[A-Z0-9.-]`` and every other value is a number or a fixed vocabulary, so no escaping is ever needed) because
the stream is the hot path. See KALSHI_API.md §3–§5.
"""

from __future__ import annotations

import json
from typing import Any

from kalshi_analytics.simulator.model import BookDelta, Event, Lifecycle, Market, Series, Trade
from kalshi_analytics.simulator.units import (
    ONE_CONTRACT,
    ONE_DOLLAR,
    cents,
    count_fp,
    dollars,
    price_ranges_json,
    rfc3339,
    rfc3339_ms,
    whole,
)

JSON = dict[str, Any]

# ----------------------------------------------------------------------------------------------------- REST


def market_status(m: Market, legacy: bool) -> str:
    # the cents-era enum had no `finalized`; its `settled` meant the same thing (KALSHI_API.md §4)
    return "settled" if legacy and m.status == "finalized" else m.status


def _top_size(levels: dict[int, int]) -> int:
    return levels[max(levels)] if levels else 0


def market_json(m: Market, legacy: bool = False) -> JSON:
    yes_bid = m.best_yes_bid()
    yes_ask = m.yes_ask()
    no_bid = m.best_no_bid()
    no_ask = ONE_DOLLAR - yes_bid if m.yes_bids else ONE_DOLLAR
    tpl = m.event.series.template
    close = rfc3339(m.close_ts)
    latest_exp = rfc3339(m.close_ts + 7 * 86400)
    sv = m.settlement_value()
    body: JSON = {
        "ticker": m.ticker,
        "event_ticker": m.event_ticker,
        "market_type": "binary",
        "title": m.title,
        "subtitle": m.yes_sub_title,
        "yes_sub_title": m.yes_sub_title,
        "no_sub_title": m.no_sub_title,
        "created_time": rfc3339(m.created_ts),
        "updated_time": rfc3339(m.updated_ts),
        "open_time": rfc3339(m.open_ts),
        "close_time": close,
        "expected_expiration_time": close,
        "expiration_time": latest_exp,
        "latest_expiration_time": latest_exp,
        "settlement_timer_seconds": m.settlement_timer,
        "status": market_status(m, legacy),
        "yes_bid_dollars": dollars(yes_bid),
        "yes_ask_dollars": dollars(yes_ask),
        "no_bid_dollars": dollars(no_bid),
        "no_ask_dollars": dollars(no_ask),
        "last_price_dollars": dollars(m.last_price),
        "previous_yes_bid_dollars": dollars(m.prev_yes_bid),
        "previous_yes_ask_dollars": dollars(m.prev_yes_ask),
        "previous_price_dollars": dollars(m.prev_price),
        "notional_value_dollars": dollars(ONE_DOLLAR),
        "liquidity_dollars": "0.0000",
        "result": m.result,
        "can_close_early": True,
        "expiration_value": m.result and ("Yes" if m.result == "yes" else "No"),
        "occurrence_datetime": None,
        "fee_waiver_expiration_time": None,
        "early_close_condition": None,
        "strike_type": m.strike_type,
        "rules_primary": f"If {m.title.lower()} at {close}, the market resolves to Yes.",
        "rules_secondary": "Simulated market: outcomes are drawn by the Kalshi Analytics exchange simulator.",
        "price_level_structure": m.price_structure,
        "price_ranges": price_ranges_json(m.ranges),
        "exchange_index": 0,
        "category": tpl.category,
        # floors are not live yet and MECNET events are always "default" (docs: settlement_bounds, spec 3.31)
        "settlement_bounds_type": "default",
    }
    if m.floor_strike is not None:
        body["floor_strike"] = m.floor_strike
    if m.cap_strike is not None:
        body["cap_strike"] = m.cap_strike
    if sv is not None:
        body["settlement_value_dollars"] = dollars(sv)
    if m.settled_ts is not None:
        body["settlement_ts"] = rfc3339(m.settled_ts)
    if legacy:
        body.update(
            yes_bid=cents(yes_bid),
            yes_ask=cents(yes_ask),
            no_bid=cents(no_bid),
            no_ask=cents(no_ask),
            last_price=cents(m.last_price),
            previous_yes_bid=cents(m.prev_yes_bid),
            previous_yes_ask=cents(m.prev_yes_ask),
            previous_price=cents(m.prev_price),
            volume=whole(m.volume),
            volume_24h=whole(m.volume - m.volume_at_prev),
            open_interest=whole(m.open_interest),
            liquidity=0,
            notional_value=100,
            tick_size=1,
            response_price_units="usd_cent",
            risk_limit_cents=0,
        )
        if sv is not None:
            body["settlement_value"] = cents(sv)
    else:
        body.update(
            yes_bid_size_fp=count_fp(_top_size(m.yes_bids)),
            yes_ask_size_fp=count_fp(_top_size(m.no_bids)),
            volume_fp=count_fp(m.volume),
            volume_24h_fp=count_fp(m.volume - m.volume_at_prev),
            open_interest_fp=count_fp(m.open_interest),
        )
    return body


def orderbook_json(m: Market, depth: int, legacy: bool = False) -> JSON:
    yes = m.book("yes")
    no = m.book("no")
    if depth > 0:
        yes, no = yes[-depth:], no[-depth:]
    if legacy:
        return {
            "orderbook": {
                "yes": [[cents(p), whole(c)] for p, c in yes] or None,
                "no": [[cents(p), whole(c)] for p, c in no] or None,
                "yes_dollars": [[dollars(p), whole(c)] for p, c in yes],
                "no_dollars": [[dollars(p), whole(c)] for p, c in no],
            }
        }
    return {
        "orderbook_fp": {
            "yes_dollars": [[dollars(p), count_fp(c)] for p, c in yes],
            "no_dollars": [[dollars(p), count_fp(c)] for p, c in no],
        }
    }


def trade_json(t: Trade, legacy: bool = False) -> JSON:
    yes = t.yes_price
    taker = t.taker_outcome_side
    body: JSON = {
        "trade_id": t.trade_id,
        "ticker": t.ticker,
        "yes_price_dollars": dollars(yes),
        "no_price_dollars": dollars(ONE_DOLLAR - yes),
        "taker_side": taker,
        "created_time": rfc3339_ms(t.ts_ms),
    }
    if legacy:
        body.update(price=cents(yes), count=whole(t.count), yes_price=cents(yes), no_price=cents(ONE_DOLLAR - yes))
    else:
        body.update(
            count_fp=count_fp(t.count),
            taker_outcome_side=taker,
            taker_book_side="bid" if taker == "yes" else "ask",
            is_block_trade=False,
        )
    return body


def series_categories(s: Series) -> list[str]:
    return [s.template.category]


def series_tags(s: Series) -> list[str]:
    return [s.template.category]


def series_json(s: Series, include_volume: bool = False, include_product_metadata: bool = False) -> JSON:
    tpl = s.template
    body: JSON = {
        "ticker": tpl.ticker,
        "frequency": tpl.frequency,
        "title": tpl.title,
        "category": tpl.category,
        "categories": series_categories(s),
        "tags": series_tags(s),
        "settlement_sources": [{"name": "Kalshi Analytics simulator", "url": "https://example.invalid/sim"}],
        "contract_url": "https://example.invalid/sim/contract.pdf",
        "contract_terms_url": "https://example.invalid/sim/terms.pdf",
        "fee_type": tpl.fee_type,
        "fee_multiplier": tpl.fee_multiplier,
        "additional_prohibitions": [],
        "last_updated_ts": rfc3339(s.created_ts),
        "exchange_index": 0,
    }
    if include_volume:
        body["volume_fp"] = count_fp(s.volume)
    if include_product_metadata:  # x-omitempty otherwise; the simulator has no internal metadata to show
        body["product_metadata"] = {}
    return body


def event_json(e: Event, with_markets: bool = False, legacy: bool = False) -> JSON:
    body: JSON = {
        "event_ticker": e.event_ticker,
        "series_ticker": e.series.ticker,
        "title": e.title,
        "sub_title": e.sub_title,
        "collateral_return_type": "MECNET" if e.mutually_exclusive else "",
        "mutually_exclusive": e.mutually_exclusive,
        "category": e.series.template.category,
        "strike_date": rfc3339(e.strike_ts),
        "strike_period": None,
        "available_on_brokers": False,
        "product_metadata": None,
        "settlement_sources": [{"name": "Kalshi Analytics simulator", "url": "https://example.invalid/sim"}],
        "last_updated_ts": rfc3339(e.last_updated_ts()),
        "exchange_index": 0,
    }
    if with_markets:
        body["markets"] = [market_json(m, legacy) for m in e.markets]
    return body


def exchange_status_json() -> JSON:
    """Always open: the simulator models no maintenance window or trading pause."""
    return {
        "exchange_active": True,
        "trading_active": True,
        "exchange_estimated_resume_time": None,
        "intra_exchange_transfers_active": True,
        "exchange_index_statuses": [
            {
                "exchange_index": 0,
                "description": "Default",
                "exchange_active": True,
                "trading_active": True,
                "intra_exchange_transfers_active": True,
            }
        ],
    }


def _side_json(c: list[int | None], base: int, legacy: bool) -> JSON:
    o, h, lo, cl = c[base], c[base + 1], c[base + 2], c[base + 3]
    assert o is not None
    assert h is not None
    assert lo is not None
    assert cl is not None
    body: JSON = {
        "open_dollars": dollars(o),
        "low_dollars": dollars(lo),
        "high_dollars": dollars(h),
        "close_dollars": dollars(cl),
    }
    if legacy:
        body.update(open=cents(o), low=cents(lo), high=cents(h), close=cents(cl))
    return body


def candle_json(end_ts: int, c: list[int | None], previous: int | None, legacy: bool) -> JSON:
    """One MarketCandlestick from an aggregated candle row (see ``MarketModel._touch_candle`` for the layout)."""
    price: JSON
    vol = c[13] or 0
    if c[8] is None:
        keys = ("open", "low", "high", "close", "mean", "min", "max")
        price = {f"{k}_dollars": None for k in keys}
        price["previous_dollars"] = dollars(previous) if previous is not None else None
        if legacy:
            price.update(dict.fromkeys(keys))
            price["previous"] = cents(previous) if previous is not None else None
    else:
        o, h, lo, cl = c[8], c[9], c[10], c[11]
        assert o is not None
        assert h is not None
        assert lo is not None
        assert cl is not None
        mean = round((c[12] or 0) / vol) if vol else cl
        price = {
            "open_dollars": dollars(o),
            "low_dollars": dollars(lo),
            "high_dollars": dollars(h),
            "close_dollars": dollars(cl),
            "mean_dollars": dollars(mean),
            "previous_dollars": dollars(previous) if previous is not None else None,
            "min_dollars": dollars(lo),
            "max_dollars": dollars(h),
        }
        if legacy:
            price.update(
                open=cents(o),
                low=cents(lo),
                high=cents(h),
                close=cents(cl),
                mean=cents(mean),
                previous=cents(previous) if previous is not None else None,
                min=cents(lo),
                max=cents(h),
            )
    body: JSON = {
        "end_period_ts": end_ts,
        "yes_bid": _side_json(c, 0, legacy),
        "yes_ask": _side_json(c, 4, legacy),
        "price": price,
    }
    oi = c[14] or 0
    if legacy:
        body.update(volume=whole(vol), open_interest=whole(oi))
    else:
        body.update(volume_fp=count_fp(vol), open_interest_fp=count_fp(oi))
    return body


# ------------------------------------------------------------------------------------------------ WebSocket
# Each function returns the JSON text of the ``msg`` object; the envelope is added per subscription.


def ws_book_levels(levels: list[tuple[int, int]], legacy: bool) -> str:
    if legacy:
        return ",".join(f'["{dollars(p)}",{whole(c)}]' for p, c in levels)
    return ",".join(f'["{dollars(p)}","{count_fp(c)}"]' for p, c in levels)


def ws_snapshot(m: Market, legacy: bool) -> str:
    parts = [f'"market_ticker":"{m.ticker}","market_id":"{m.market_id}"']
    for side in ("yes", "no"):
        levels = m.book(side)
        if not levels:  # each key is ABSENT when that side is empty
            continue
        if legacy:
            parts.append(f'"{side}":[' + ",".join(f"[{cents(p)},{whole(c)}]" for p, c in levels) + "]")
            parts.append(f'"{side}_dollars":[{ws_book_levels(levels, True)}]')
        else:
            parts.append(f'"{side}_dollars_fp":[{ws_book_levels(levels, False)}]')
    return "{" + ",".join(parts) + "}"


def ws_delta(d: BookDelta, legacy: bool) -> str:
    m = d.market
    if legacy:
        return (
            f'{{"market_ticker":"{m.ticker}","market_id":"{m.market_id}","price":{cents(d.price)},'
            f'"price_dollars":"{dollars(d.price)}","delta":{whole(d.delta)},"side":"{d.side}"}}'
        )
    return (
        f'{{"market_ticker":"{m.ticker}","market_id":"{m.market_id}","price_dollars":"{dollars(d.price)}",'
        f'"delta_fp":"{count_fp(d.delta)}","side":"{d.side}","ts":"{rfc3339(d.ts_ms // 1000)}","ts_ms":{d.ts_ms}}}'
    )


def ws_ticker(m: Market, ts_ms: int, legacy: bool) -> str:
    yes_bid = m.best_yes_bid()
    yes_ask = m.yes_ask()
    ts = ts_ms // 1000
    dollar_volume = m.dollar_volume_pc // (ONE_DOLLAR * ONE_CONTRACT)
    dollar_oi = m.open_interest * m.last_price // (ONE_DOLLAR * ONE_CONTRACT)
    if legacy:
        no_bid = m.best_no_bid()
        return (
            f'{{"market_ticker":"{m.ticker}","market_id":"{m.market_id}","price":{cents(m.last_price)},'
            f'"yes_bid":{cents(yes_bid)},"yes_ask":{cents(yes_ask)},"price_dollars":"{dollars(m.last_price)}",'
            f'"yes_bid_dollars":"{dollars(yes_bid)}","no_bid_dollars":"{dollars(no_bid)}",'
            f'"volume":{whole(m.volume)},"open_interest":{whole(m.open_interest)},"dollar_volume":{dollar_volume},'
            f'"dollar_open_interest":{dollar_oi},"ts":{ts}}}'
        )
    return (
        f'{{"market_ticker":"{m.ticker}","market_id":"{m.market_id}","price_dollars":"{dollars(m.last_price)}",'
        f'"yes_bid_dollars":"{dollars(yes_bid)}","yes_ask_dollars":"{dollars(yes_ask)}",'
        f'"volume_fp":"{count_fp(m.volume)}","open_interest_fp":"{count_fp(m.open_interest)}",'
        f'"dollar_volume":{dollar_volume},"dollar_open_interest":{dollar_oi},'
        f'"yes_bid_size_fp":"{count_fp(_top_size(m.yes_bids))}","yes_ask_size_fp":"{count_fp(_top_size(m.no_bids))}",'
        f'"last_trade_size_fp":"{count_fp(m.last_trade_size)}","ts":{ts},"ts_ms":{ts_ms},"time":"{rfc3339(ts)}"}}'
    )


def ws_trade(t: Trade, legacy: bool) -> str:
    yes = t.yes_price
    taker = t.taker_outcome_side
    ts = t.ts_ms // 1000
    if legacy:
        return (
            f'{{"trade_id":"{t.trade_id}","market_ticker":"{t.market.ticker}","yes_price":{cents(yes)},'
            f'"yes_price_dollars":"{dollars(yes)}","no_price":{cents(ONE_DOLLAR - yes)},'
            f'"no_price_dollars":"{dollars(ONE_DOLLAR - yes)}","count":{whole(t.count)},"taker_side":"{taker}",'
            f'"ts":{ts}}}'
        )
    return (
        f'{{"trade_id":"{t.trade_id}","market_ticker":"{t.market.ticker}","yes_price_dollars":"{dollars(yes)}",'
        f'"no_price_dollars":"{dollars(ONE_DOLLAR - yes)}","count_fp":"{count_fp(t.count)}",'
        f'"taker_side":"{taker}","taker_outcome_side":"{taker}",'
        f'"taker_book_side":"{"bid" if taker == "yes" else "ask"}","is_block_trade":false,'
        f'"ts":{ts},"ts_ms":{t.ts_ms}}}'
    )


def ws_event_lifecycle(e: Event) -> str:
    body: JSON = {
        "event_ticker": e.event_ticker,
        "exchange_index": 0,
        "title": e.title,
        "subtitle": e.sub_title,
        "collateral_return_type": "MECNET" if e.mutually_exclusive else "",
        "series_ticker": e.series.ticker,
        "strike_date": int(e.strike_ts),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def ws_lifecycle(ev: Lifecycle, legacy: bool) -> str:
    m = ev.market
    body: JSON = {"event_type": ev.event_type, "market_ticker": m.ticker, "exchange_index": 0}
    if ev.event_type == "created":
        body.update(
            open_ts=int(m.open_ts),
            close_ts=int(m.close_ts),
            price_level_structure=m.price_structure,
            price_ranges=price_ranges_json(m.ranges),
            strike_type=m.strike_type,
            yes_sub_title=m.yes_sub_title,
            additional_metadata={
                "name": m.title,
                "title": m.title,
                "yes_sub_title": m.yes_sub_title,
                "no_sub_title": m.no_sub_title,
                "rules_primary": f"If {m.title.lower()}, the market resolves to Yes.",
                "rules_secondary": "",
                "can_close_early": True,
                "event_ticker": m.event_ticker,
                "expected_expiration_ts": int(m.close_ts),
                "strike_type": m.strike_type,
            },
        )
        if m.floor_strike is not None:
            body["floor_strike"] = m.floor_strike
            body["additional_metadata"]["floor_strike"] = m.floor_strike
    elif ev.event_type in ("activated", "deactivated"):
        body["is_deactivated"] = ev.event_type == "deactivated"
    elif ev.event_type == "close_date_updated":
        body["close_ts"] = int(m.close_ts)
    elif ev.event_type == "determined":
        sv = m.settlement_value() or 0
        body.update(
            result=m.result,
            determination_ts=ev.ts,
            settlement_value=cents(sv) if legacy else dollars(sv),
        )
    elif ev.event_type == "settled":
        body.update(result=m.result, settled_ts=ev.ts)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
