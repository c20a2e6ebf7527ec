"""The deterministic market model behind the simulated exchange.

Everything random is drawn from one ``random.Random(seed)`` in the order events are processed, and events are
processed strictly in simulated-time order from one heap. So the same seed gives the same series, events,
markets, books, trades and lifecycle transitions however the simulated clock is advanced (one big step or a
thousand small ones); only outside interventions (``force_settle``) change the future.

Each market has a latent probability (a bounded random walk in logit space with news jumps). Market makers
keep a bids-only book around it (YES bids below p, NO bids below 1 − p, on the market's tick grid); takers
arrive as a Poisson process and walk the opposite book, printing one trade per level filled. Markets close at
``close_time`` (resting orders cancelled), are determined with a result drawn from the latent probability,
and are finalized ``settlement_timer_seconds`` later. New events are listed as old ones close.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from kalshi_analytics.simulator.units import (
    LINEAR_CENT,
    ONE_CONTRACT,
    ONE_DOLLAR,
    PRICE_STRUCTURES,
    PriceRange,
    grid_below,
)

Side = Literal["yes", "no"]
MarketStatus = Literal["initialized", "inactive", "active", "closed", "determined", "finalized"]

LOGIT_BOUND = 4.5  # p stays within ~[0.011, 0.989]
MAX_TRADES_KEPT = 2_000_000


# --------------------------------------------------------------------------------------------- reference data


@dataclass(frozen=True, slots=True)
class SeriesTemplate:
    ticker: str
    title: str
    category: str
    frequency: str
    fee_type: str
    fee_multiplier: float
    kind: Literal["threshold", "binary", "candidates"]
    center: float = 0.0
    step: float = 1.0
    unit: str = ""
    candidates: tuple[tuple[str, str], ...] = ()
    durations: tuple[float, ...] = (300.0, 1800.0, 7200.0, 86400.0)


TEMPLATES: tuple[SeriesTemplate, ...] = (
    SeriesTemplate("KXAPPROVAL", "Presidential approval rating", "Politics", "weekly", "quadratic", 1.0,
                   "threshold", center=44, step=1, unit="%", durations=(1800.0, 86400.0, 604800.0)),
    SeriesTemplate("KXSENATEVOTE", "Senate passes the bill", "Politics", "custom", "quadratic", 1.0, "binary",
                   durations=(3600.0, 86400.0)),
    SeriesTemplate("KXFEDDECISION", "Fed rate decision", "Economics", "custom", "quadratic_with_maker_fees", 1.0,
                   "candidates", candidates=(("H25", "Hike 25bps"), ("H0", "Hold"), ("C25", "Cut 25bps"),
                                             ("C50", "Cut 50bps")), durations=(7200.0, 86400.0)),
    SeriesTemplate("KXCPI", "CPI month over month", "Economics", "monthly", "quadratic", 1.0, "threshold",
                   center=0.3, step=0.1, unit="%", durations=(1800.0, 86400.0)),
    SeriesTemplate("KXNBAGAME", "Pro basketball game winner", "Sports", "daily", "quadratic_with_maker_fees", 1.0,
                   "candidates", candidates=(("HOM", "Home team"), ("AWY", "Away team")),
                   durations=(300.0, 1800.0, 7200.0)),
    SeriesTemplate("KXSOCCER", "Soccer match result", "Sports", "daily", "quadratic", 1.0, "candidates",
                   candidates=(("HOM", "Home win"), ("TIE", "Draw"), ("AWY", "Away win")),
                   durations=(300.0, 1800.0, 7200.0)),
    SeriesTemplate("KXBTCD", "Bitcoin price at close", "Crypto", "hourly", "quadratic", 1.0, "threshold",
                   center=98000, step=500, unit="$", durations=(300.0, 3600.0, 86400.0)),
    SeriesTemplate("KXETHD", "Ethereum price at close", "Crypto", "hourly", "quadratic", 0.5, "threshold",
                   center=3500, step=25, unit="$", durations=(300.0, 3600.0)),
    SeriesTemplate("KXHIGHNY", "Highest temperature in NYC", "Weather", "daily", "quadratic", 1.0, "threshold",
                   center=60, step=2, unit="°F", durations=(1800.0, 86400.0)),
    SeriesTemplate("KXRAINNYC", "Rain in NYC", "Weather", "daily", "flat", 1.0, "binary",
                   durations=(1800.0, 86400.0)),
)  # fmt: skip


@dataclass(slots=True)
class Series:
    template: SeriesTemplate
    created_ts: float
    volume: int = 0  # hundredths of a contract

    @property
    def ticker(self) -> str:
        return self.template.ticker


@dataclass(slots=True)
class Event:
    index: int
    event_ticker: str
    series: Series
    title: str
    sub_title: str
    mutually_exclusive: bool
    strike_ts: float
    created_ts: float
    markets: list[Market] = field(default_factory=list)

    def last_updated_ts(self) -> float:
        """When the event's metadata last changed: its newest market change, else its listing."""
        return max(m.updated_ts for m in self.markets) if self.markets else self.created_ts


@dataclass(slots=True, eq=False)
class Market:
    index: int
    ticker: str
    market_id: str
    event: Event
    title: str
    yes_sub_title: str
    no_sub_title: str
    strike_type: str
    floor_strike: float | None
    cap_strike: float | None
    created_ts: float
    open_ts: float
    close_ts: float
    settlement_timer: int
    price_structure: str
    ranges: list[PriceRange]
    fractional: bool
    x: float  # latent probability, logit space
    x_ts: float
    sigma: float  # logit units per sqrt(second)
    half_spread: int  # P units
    depth: int  # levels per side the makers aim for
    trade_rate: float  # taker arrivals per simulated second
    status: MarketStatus = "initialized"
    updated_ts: float = 0.0
    yes_bids: dict[int, int] = field(default_factory=dict)  # price P → count C
    no_bids: dict[int, int] = field(default_factory=dict)
    last_price: int = 0
    last_trade_size: int = 0
    volume: int = 0
    volume_at_prev: int = 0
    open_interest: int = 0
    dollar_volume_pc: int = 0  # Σ price·count in P·C units
    prev_yes_bid: int = 0
    prev_yes_ask: int = 0
    prev_price: int = 0
    result: str = ""
    determined_ts: float | None = None
    settled_ts: float | None = None
    close_early: bool = False
    candles: dict[int, list[int | None]] = field(default_factory=dict)

    @property
    def series_ticker(self) -> str:
        return self.event.series.ticker

    @property
    def event_ticker(self) -> str:
        return self.event.event_ticker

    @property
    def probability(self) -> float:
        return 1.0 / (1.0 + math.exp(-self.x))

    def best_yes_bid(self) -> int:
        return max(self.yes_bids) if self.yes_bids else 0

    def best_no_bid(self) -> int:
        return max(self.no_bids) if self.no_bids else 0

    def yes_ask(self) -> int:
        return ONE_DOLLAR - max(self.no_bids) if self.no_bids else ONE_DOLLAR

    def book(self, side: Side) -> list[tuple[int, int]]:
        """Resting bids of one side, ascending by price (best bid last), as Kalshi sends them."""
        levels = self.yes_bids if side == "yes" else self.no_bids
        return sorted(levels.items())

    def settlement_value(self) -> int | None:
        if self.result == "yes":
            return ONE_DOLLAR
        if self.result == "no":
            return 0
        return None


@dataclass(slots=True)
class Trade:
    index: int
    trade_id: str
    market: Market
    yes_price: int
    count: int
    taker_outcome_side: Side
    ts_ms: int

    @property
    def ticker(self) -> str:
        return self.market.ticker


# ------------------------------------------------------------------------------------------- emitted events


@dataclass(slots=True)
class BookDelta:
    market: Market
    side: Side
    price: int
    delta: int
    ts_ms: int


@dataclass(slots=True)
class TradePrint:
    trade: Trade


@dataclass(slots=True)
class TickerChange:
    market: Market
    ts_ms: int


@dataclass(slots=True)
class Lifecycle:
    market: Market
    event_type: Literal["created", "activated", "deactivated", "close_date_updated", "determined", "settled"]
    ts: int


ModelEvent = BookDelta | TradePrint | TickerChange | Lifecycle
Listener = Callable[[ModelEvent], None]


# ------------------------------------------------------------------------------------------------ the model


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _strike_text(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


class MarketModel:
    """All series, events, markets, books and trades of the simulated exchange, advanced by :meth:`advance_to`."""

    def __init__(
        self,
        *,
        seed: int = 1,
        markets: int = 50,
        start_ts: float | None = None,
        activity: float = 1.0,
        legacy: bool = False,
        settlement_timer_seconds: tuple[int, int] = (60, 300),
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - reproducibility is the point, not secrecy
        self.target_markets = max(1, markets)
        self.activity = activity
        self.legacy = legacy
        self.settlement_timer_range = settlement_timer_seconds
        if start_ts is None:
            start_ts = float(int(datetime.now(UTC).timestamp()) // 60 * 60)
        self.start_ts = start_ts
        self.now = start_ts
        self.series: dict[str, Series] = {}
        self.events: dict[str, Event] = {}
        self.event_list: list[Event] = []
        self.markets: dict[str, Market] = {}
        self.market_list: list[Market] = []
        self.trades: list[Trade] = []  # oldest first; trimmed from the front beyond MAX_TRADES_KEPT
        self.trades_offset = 0  # index of trades[0]
        self.trades_generated = 0
        self.listeners: list[Listener] = []
        self._heap: list[tuple[float, int, str, Market | None]] = []
        self._counter = 0
        self._open_markets = 0  # not yet closed
        self._build_initial()

    # ------------------------------------------------------------------ public API

    def advance_to(self, t: float, max_events: int | None = None) -> int:
        """Process every scheduled event up to simulated time ``t``; returns how many ran.

        With ``max_events`` the clock stops at the last processed event when the budget runs out.
        """
        n = 0
        heap = self._heap
        while heap and heap[0][0] <= t:
            if max_events is not None and n >= max_events:
                return n
            ts, _, kind, m = heapq.heappop(heap)
            self.now = max(self.now, ts)
            self._dispatch(kind, m)
            n += 1
        self.now = max(self.now, t)
        return n

    def step(self, seconds: float) -> int:
        return self.advance_to(self.now + seconds)

    def trades_since(self, index: int) -> Iterator[Trade]:
        start = max(0, index - self.trades_offset)
        yield from self.trades[start:]

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.market_list:
            counts[m.status] = counts.get(m.status, 0) + 1
        return counts

    def force_settle(self, ticker: str, result: Literal["yes", "no"], finalize: bool = False) -> Market:
        """Close ``ticker`` now (``close_date_updated``), determine it with ``result`` and finalize it after its
        settlement timer (or at once with ``finalize``)."""
        m = self.markets[ticker]
        if m.status in ("determined", "finalized"):
            raise ValueError(f"market {ticker} is already {m.status}")
        now = self.now
        if m.status in ("initialized", "active", "inactive"):
            m.close_early = True
            m.close_ts = now
            self._emit(Lifecycle(m, "close_date_updated", int(now)))
            self._close(m)
        self._determine(m, result)
        if finalize:
            self._settle(m)
        else:
            self._schedule(now + m.settlement_timer, "settle", m)
        return m

    # ------------------------------------------------------------------ scheduling

    def _schedule(self, t: float, kind: str, m: Market | None) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (t, self._counter, kind, m))

    def _emit(self, ev: ModelEvent) -> None:
        for listener in self.listeners:
            listener(ev)

    def _dispatch(self, kind: str, m: Market | None) -> None:  # noqa: PLR0912 - one branch per event kind
        if kind == "trade":
            assert m is not None
            if m.status == "active":
                self._trade(m)
                self._schedule(self.now + self.rng.expovariate(m.trade_rate), "trade", m)
        elif kind == "quote":
            assert m is not None
            if m.status == "active":
                self._requote(m)
                self._schedule(self.now + self.rng.expovariate(1 / 4.0), "quote", m)
        elif kind == "news":
            assert m is not None
            if m.status == "active":
                self._advance_latent(m)
                m.x = max(-LOGIT_BOUND, min(LOGIT_BOUND, m.x + self.rng.gauss(0.0, 0.7)))
                self._requote(m)
                life = max(60.0, m.close_ts - m.open_ts)
                self._schedule(self.now + self.rng.expovariate(3.0 / life), "news", m)
        elif kind == "open":
            assert m is not None
            if m.status == "initialized":
                self._open(m)
        elif kind == "close":
            assert m is not None
            if m.status in ("active", "inactive", "initialized") and not m.close_early:
                self._close(m)
                self._schedule(self.now + self.rng.uniform(2.0, 30.0), "determine", m)
        elif kind == "determine":
            assert m is not None
            if m.status == "closed":
                self._determine(m, "yes" if self.rng.random() < m.probability else "no")
                self._schedule(self.now + m.settlement_timer, "settle", m)
        elif kind == "settle":
            assert m is not None
            if m.status == "determined":
                self._settle(m)
        elif kind == "day":
            assert m is not None
            m.prev_yes_bid, m.prev_yes_ask, m.prev_price = m.best_yes_bid(), m.yes_ask(), m.last_price
            m.volume_at_prev = m.volume
            if m.status not in ("finalized",):
                self._schedule(self.now + 86400.0, "day", m)
        elif kind == "list" and self._open_markets < self.target_markets:
            self._new_event(self.now, announce=True)

    # ------------------------------------------------------------------ construction

    def _build_initial(self) -> None:
        rng = self.rng
        for tpl in TEMPLATES:
            self.series[tpl.ticker] = Series(tpl, self.start_ts - 365 * 86400)
        # a little settled history first, so the settled filter and closed-market pages have something
        history = max(1, self.target_markets // 10)
        made = 0
        while made < history:
            ev = self._new_event(self.start_ts - rng.uniform(3 * 86400, 20 * 86400), history=True)
            made += len(ev.markets)
        while self._open_markets < self.target_markets:
            created = self.start_ts - rng.uniform(0, 3 * 86400)
            self._new_event(created, announce=False)

    def _new_event(  # noqa: PLR0912, PLR0915 - builds an event and its markets in one readable pass
        self, created: float, announce: bool = False, history: bool = False
    ) -> Event:
        rng = self.rng
        tpl = rng.choice(TEMPLATES)
        series = self.series[tpl.ticker]
        duration = rng.choice(tpl.durations)
        if history:
            open_ts = created
            close_ts = created + duration
        elif announce:
            open_ts = created + rng.uniform(0.0, 60.0)
            close_ts = open_ts + duration * rng.uniform(0.5, 1.5)
        else:
            # already listed before the simulator started: mostly open, a few opening soon
            open_ts = self.start_ts + rng.uniform(10.0, 600.0) if rng.random() < 0.1 else created
            close_ts = max(open_ts, self.start_ts) + duration * rng.uniform(0.2, 1.5)
        close_ts = float(int(close_ts))
        open_ts = float(int(open_ts))
        dt = datetime.fromtimestamp(close_ts, UTC)
        base = f"{tpl.ticker}-{dt:%y}{_MONTHS[dt.month - 1]}{dt:%d%H%M}"
        event_ticker = base
        suffix = 0
        while event_ticker in self.events:
            suffix += 1
            event_ticker = f"{base}{chr(ord('A') + (suffix - 1) % 26)}{(suffix - 1) // 26 or ''}"
        ev = Event(
            index=len(self.event_list),
            event_ticker=event_ticker,
            series=series,
            title=f"{tpl.title} on {dt:%b %d, %Y %H:%M} UTC",
            sub_title=f"On {dt:%b %d, %Y}",
            mutually_exclusive=tpl.kind == "candidates",
            strike_ts=close_ts,
            created_ts=created,
        )
        self.events[event_ticker] = ev
        self.event_list.append(ev)

        specs: list[tuple[str, str, str, str, float | None, float | None, float]] = []
        if tpl.kind == "binary":
            specs.append(("", tpl.title + "?", "Yes", "custom", None, None, rng.gauss(0.0, 1.2)))
        elif tpl.kind == "candidates":
            raw = [rng.gauss(0.0, 1.0) for _ in tpl.candidates]
            total = sum(math.exp(r) for r in raw)
            for (code, label), r in zip(tpl.candidates, raw, strict=True):
                p = min(0.97, max(0.03, math.exp(r) / total))
                specs.append((f"-{code}", label, label, "custom", None, None, math.log(p / (1 - p))))
        else:
            n = rng.randint(3, 7)
            center = tpl.center * (1 + rng.gauss(0.0, 0.02)) if tpl.center > 1 else tpl.center
            lo = round(center / tpl.step) * tpl.step - (n // 2) * tpl.step
            for i in range(n):
                strike = round(lo + i * tpl.step, 6)
                z = (center - strike) / (tpl.step * 1.5)
                specs.append((f"-T{_strike_text(strike)}", f"{tpl.title} above {_strike_text(strike)}{tpl.unit}",
                              f"Above {_strike_text(strike)}{tpl.unit}", "greater", strike, None,
                              z + rng.gauss(0.0, 0.3)))  # fmt: skip

        for suffix_t, title, yes_sub, strike_type, floor, cap, x0 in specs:
            ticker = event_ticker + suffix_t
            if self.legacy:
                structure = "linear_cent"
            else:
                u = rng.random()
                structure = "linear_cent" if u < 0.85 else ("deci_cent" if u < 0.93 else "tapered_deci_cent")
            ranges = PRICE_STRUCTURES[structure] if structure != "linear_cent" else LINEAR_CENT
            life = max(60.0, close_ts - open_ts)
            m = Market(
                index=len(self.market_list),
                ticker=ticker,
                market_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                event=ev,
                title=title,
                yes_sub_title=yes_sub,
                no_sub_title=yes_sub,
                strike_type=strike_type,
                floor_strike=floor,
                cap_strike=cap,
                created_ts=float(int(created)),
                open_ts=open_ts,
                close_ts=close_ts,
                settlement_timer=rng.randint(*self.settlement_timer_range),
                price_structure=structure,
                ranges=ranges,
                fractional=structure != "linear_cent",
                x=max(-LOGIT_BOUND, min(LOGIT_BOUND, x0)),
                x_ts=max(created, self.now),
                sigma=rng.uniform(0.8, 1.6) / math.sqrt(life),
                half_spread=rng.choice((100, 100, 200, 300)) if structure == "linear_cent" else rng.choice((30, 50)),
                depth=rng.randint(6, 14),
                trade_rate=self.activity * rng.lognormvariate(0.0, 0.7) / 20.0,
                updated_ts=float(int(created)),
            )
            ev.markets.append(m)
            self.markets[ticker] = m
            self.market_list.append(m)
            if history:
                self._history(m)
                continue
            self._open_markets += 1
            if announce:
                self._emit(Lifecycle(m, "created", int(self.now)))
            if open_ts <= self.now:
                self._open(m, announce=announce)
            else:
                self._schedule(open_ts, "open", m)
            self._schedule(close_ts, "close", m)
            self._schedule(max(self.now, created) + 86400.0, "day", m)
        return ev

    def _history(self, m: Market) -> None:
        """A market that closed and settled before the simulator started (no book, a few stats)."""
        rng = self.rng
        m.status = "finalized"
        m.volume = rng.randint(10, 5000) * ONE_CONTRACT
        m.last_price = rng.randint(1, 99) * 100
        m.result = "yes" if rng.random() < m.probability else "no"
        m.determined_ts = m.close_ts + 10
        m.settled_ts = m.close_ts + 10 + m.settlement_timer
        m.updated_ts = m.settled_ts

    # ------------------------------------------------------------------ transitions

    def _open(self, m: Market, announce: bool = True) -> None:
        m.status = "active"
        m.updated_ts = self.now
        m.x_ts = self.now
        self._requote(m, initial=True)
        m.prev_yes_bid, m.prev_yes_ask = m.best_yes_bid(), m.yes_ask()
        if announce:
            self._emit(Lifecycle(m, "activated", int(self.now)))
        self._schedule(self.now + self.rng.expovariate(m.trade_rate), "trade", m)
        self._schedule(self.now + self.rng.expovariate(1 / 4.0), "quote", m)
        life = max(60.0, m.close_ts - m.open_ts)
        self._schedule(self.now + self.rng.expovariate(3.0 / life), "news", m)

    def _close(self, m: Market) -> None:
        self._advance_latent(m)
        m.status = "closed"
        m.updated_ts = self.now
        self._open_markets -= 1
        ts_ms = int(self.now * 1000)
        for side, levels in (("yes", m.yes_bids), ("no", m.no_bids)):
            for price in sorted(levels):
                self._emit(BookDelta(m, side, price, -levels[price], ts_ms))  # type: ignore[arg-type]
            levels.clear()
        self._emit(TickerChange(m, ts_ms))
        self._schedule(self.now + self.rng.expovariate(1 / 30.0), "list", None)

    def _determine(self, m: Market, result: Literal["yes", "no"]) -> None:
        m.status = "determined"
        m.result = result
        m.determined_ts = self.now
        m.updated_ts = self.now
        self._emit(Lifecycle(m, "determined", int(self.now)))

    def _settle(self, m: Market) -> None:
        m.status = "finalized"
        m.settled_ts = self.now
        m.updated_ts = self.now
        self._emit(Lifecycle(m, "settled", int(self.now)))

    # ------------------------------------------------------------------ prices, books, trades

    def _advance_latent(self, m: Market) -> None:
        dt = self.now - m.x_ts
        if dt > 0:
            x = m.x + m.sigma * math.sqrt(dt) * self.rng.gauss(0.0, 1.0)
            if x > LOGIT_BOUND:  # reflect at the bounds
                x = 2 * LOGIT_BOUND - x
            elif x < -LOGIT_BOUND:
                x = -2 * LOGIT_BOUND - x
            m.x = max(-LOGIT_BOUND, min(LOGIT_BOUND, x))
            m.x_ts = self.now

    def _size(self, m: Market) -> int:
        if m.fractional and self.rng.random() < 0.5:
            return max(1, int(self.rng.expovariate(1 / 5000.0)))
        return ONE_CONTRACT * max(1, int(self.rng.expovariate(1 / 60.0)))

    def _requote(self, m: Market, initial: bool = False) -> None:
        """Market makers pull quotes that are now through fair value, trim deep levels, and add fresh size."""
        self._advance_latent(m)
        rng = self.rng
        p = int(m.probability * ONE_DOLLAR)
        ts_ms = int(self.now * 1000)
        emit = self._emit
        changed_top = False
        for side, levels, fair in (("yes", m.yes_bids, p), ("no", m.no_bids, ONE_DOLLAR - p)):
            top_allowed = fair - m.half_spread
            old_best = max(levels) if levels else 0
            grid = grid_below(top_allowed + 1, m.depth, m.ranges)
            floor = grid[-1] if grid else 0
            for price in [q for q in levels if q > top_allowed or q < floor]:
                emit(BookDelta(m, side, price, -levels.pop(price), ts_ms))  # type: ignore[arg-type]
            if not grid:
                continue
            if initial:
                adds = grid
            else:
                adds = [rng.choice(grid) for _ in range(2 if len(levels) < m.depth else 1)]
                if levels and rng.random() < 0.3:  # a partial cancel somewhere in the book
                    price = rng.choice(sorted(levels))
                    cut = max(1, int(levels[price] * rng.random()))
                    if m.fractional is False:
                        cut = max(ONE_CONTRACT, cut // ONE_CONTRACT * ONE_CONTRACT)
                    cut = min(cut, levels[price])
                    if cut == levels[price]:
                        del levels[price]
                    else:
                        levels[price] -= cut
                    emit(BookDelta(m, side, price, -cut, ts_ms))  # type: ignore[arg-type]
            for price in adds:
                qty = self._size(m) * rng.randint(1, 4)
                levels[price] = levels.get(price, 0) + qty
                emit(BookDelta(m, side, price, qty, ts_ms))  # type: ignore[arg-type]
            if (max(levels) if levels else 0) != old_best:
                changed_top = True
        if changed_top and not initial:
            self._touch_candle(m)
            emit(TickerChange(m, ts_ms))

    def _trade(self, m: Market) -> None:
        self._advance_latent(m)
        rng = self.rng
        p = m.probability * ONE_DOLLAR
        perceived = p + rng.gauss(0.0, 150.0)
        mid = (m.best_yes_bid() + m.yes_ask()) / 2
        buy_yes = rng.random() < 0.5 + max(-0.4, min(0.4, (perceived - mid) / 1500.0))
        want = self._size(m)
        slip = rng.uniform(50.0, 400.0)
        ts_ms = int(self.now * 1000)
        if buy_yes:  # lifts YES asks = hits NO bids, best (highest) NO bid first
            levels, book_side, outcome = m.no_bids, "no", "yes"
        else:
            levels, book_side, outcome = m.yes_bids, "yes", "no"
        filled_any = False
        for price in sorted(levels, reverse=True):
            yes_price = ONE_DOLLAR - price if buy_yes else price
            if (buy_yes and yes_price > perceived + slip) or (not buy_yes and yes_price < perceived - slip):
                break
            qty = levels[price]
            fill = min(want, qty)
            if fill == qty:
                del levels[price]
            else:
                levels[price] = qty - fill
            self._emit(BookDelta(m, book_side, price, -fill, ts_ms))  # type: ignore[arg-type]
            trade = Trade(
                index=self.trades_offset + len(self.trades),
                trade_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                market=m,
                yes_price=yes_price,
                count=fill,
                taker_outcome_side=outcome,  # type: ignore[arg-type]
                ts_ms=ts_ms,
            )
            self.trades.append(trade)
            self.trades_generated += 1
            m.last_price = yes_price
            m.last_trade_size = fill
            m.volume += fill
            m.event.series.volume += fill
            m.dollar_volume_pc += yes_price * fill
            if rng.random() < 0.65:
                m.open_interest += fill
            else:
                m.open_interest = max(0, m.open_interest - fill)
            self._touch_candle(m, trade)
            self._emit(TradePrint(trade))
            filled_any = True
            want -= fill
            if want <= 0:
                break
        if len(self.trades) > MAX_TRADES_KEPT:
            cut = len(self.trades) - MAX_TRADES_KEPT // 2
            del self.trades[:cut]
            self.trades_offset += cut
        if filled_any:
            self._emit(TickerChange(m, ts_ms))

    # ------------------------------------------------------------------ candles

    # candle layout: yes_bid o,h,l,c (0-3) | yes_ask o,h,l,c (4-7) | price o,h,l,c (8-11) |
    #                Σ price·count (12) | Σ count = volume (13) | open interest at the close (14)

    def _touch_candle(self, m: Market, trade: Trade | None = None) -> None:
        end = (int(self.now) // 60 + 1) * 60
        c = m.candles.get(end)
        yb, ya = m.best_yes_bid(), m.yes_ask()
        if c is None:
            c = [yb, yb, yb, yb, ya, ya, ya, ya, None, None, None, None, 0, 0, m.open_interest]
            m.candles[end] = c
        else:
            c[1] = max(c[1], yb)  # type: ignore[type-var]
            c[2] = min(c[2], yb)  # type: ignore[type-var]
            c[3] = yb
            c[5] = max(c[5], ya)  # type: ignore[type-var]
            c[6] = min(c[6], ya)  # type: ignore[type-var]
            c[7] = ya
        if trade is not None:
            tp = trade.yes_price
            if c[8] is None:
                c[8] = c[9] = c[10] = tp
            else:
                c[9] = max(c[9], tp)  # type: ignore[type-var]
                c[10] = min(c[10], tp)  # type: ignore[type-var]
            c[11] = tp
            c[12] = (c[12] or 0) + tp * trade.count
            c[13] = (c[13] or 0) + trade.count
        c[14] = m.open_interest
