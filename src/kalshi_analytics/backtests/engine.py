"""The backtest engine: feed a strategy's intents over a :class:`~.data.Dataset` to the trading core.

Everything about money — fills, fees, cash, lots, settlement, marks, the equity curve and the metrics — is the
trading core's (:mod:`kalshi_analytics.trading`), the same code the live runner feeds. This module only walks
the recorded data in time order and hands the core its events. Two paths produce the intents:

- vectorised: a strategy with ``signals`` computes every intent of a market at once (floats, numpy — the
  "kernel"); the engine merges the intents of all markets in time order and feeds them to the core;
- per event: the engine walks every snapshot of every market in time order, appends it to that market's
  buffer and calls ``on_event`` with a view of the buffer up to that snapshot (look-ahead impossible).

Settlement: a market with a result settles when its result became known — ``settled_at`` as the recorder stored
it (the exchange's settlement time), else its close time, else its last snapshot — provided that is inside the
window; its payout is cash from then on, for every later intent. Positions in other markets are marked at the
last bid of their side at the end and flagged. With a fill latency, an intent decided at a snapshot fills on its
market's first snapshot at or after the decision time plus the latency. Snapshots that recorded a trade and no
quote (candle imports) are quoted at the trade for strategies and fills alike, when the fill model's
``trade_quotes`` says so (:mod:`.trade_quotes`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from kalshi_analytics.backtests.causality import CausalCheck, CausalChecker
from kalshi_analytics.backtests.data import SOURCES, Dataset, MarketInfo
from kalshi_analytics.backtests.feed import EventFeed
from kalshi_analytics.backtests.trade_quotes import BoolArray, quote_trades
from kalshi_analytics.strategies.base import FIELDS, Strategy, StrategyParams
from kalshi_analytics.trading.core import (
    CoreConfig,
    MarketSpec,
    TradingCore,
    price_of,
    signal_value,
)
from kalshi_analytics.trading.equity import EquityCurve, MarkTape, equity_curve, flat_curve
from kalshi_analytics.trading.fees import describe_fee_model
from kalshi_analytics.trading.portfolio import Execution
from kalshi_analytics.trading.result import TradingResult

__all__ = [
    "EngineConfig",
    "Execution",
    "Intents",
    "Progress",
    "SimulationResult",
    "book_points",
    "plan",
    "simulate",
]  # Execution: re-exported

Progress = Callable[[str, int, int], None]  # (phase, done, total)
_ZERO = Decimal(0)
_Q4 = Decimal("0.0001")
_NEVER = int(np.iinfo(np.int64).max)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class EngineConfig(CoreConfig):
    """The trading core's settings plus the engine's own."""

    vectorised: bool | None = None  # None: use ``signals`` when the strategy has it
    equity_interval_seconds: float = 60.0  # the equity curve's regular sampling, in data time


@dataclass
class SimulationResult(TradingResult):
    snapshots: int = 0
    markets: int = 0
    path: str = ""
    simulate_seconds: float = 0.0
    causal_check: dict[str, Any] | None = None  # the check of the vectorised signals, when they were considered

    def run_info(self) -> dict[str, Any]:
        """What the metrics of a backtest add to the trading core's."""
        info: dict[str, Any] = {"markets": self.markets, "snapshots": self.snapshots, "path": self.path}
        if self.causal_check is not None:
            info["causal_check"] = self.causal_check
        return info


class DatasetQuotes:
    """The core's view of a dataset's snapshots (and recorded books, when loaded); ``row`` is a dataset row."""

    __slots__ = ("books", "by_trade", "na", "nb", "src", "ts", "ya", "yas", "yb", "ybs")

    def __init__(self, ds: Dataset, by_trade: BoolArray | None = None) -> None:
        c = ds.columns
        self.yb, self.ya, self.nb, self.na = c["yes_bid"], c["yes_ask"], c["no_bid"], c["no_ask"]
        self.ybs, self.yas = c["yes_bid_size"], c["yes_ask_size"]
        self.ts, self.src = ds.ts_us, ds.source
        self.books = ds.books
        self.by_trade = by_trade

    # ``.item(row)``: the Python value at once, without a numpy scalar in between (called once or more per fill).
    def ts_us(self, row: int) -> int:
        return int(self.ts.item(row))

    def source(self, row: int) -> str:
        return SOURCES[int(self.src.item(row))]

    def touch(self, row: int, side: int, buy: bool) -> tuple[float, float]:
        # Kalshi's books are bids only: a NO ask is a YES bid (at its size), a YES ask a NO bid.
        if buy:
            return (self.ya.item(row), self.yas.item(row)) if side == 1 else (self.na.item(row), self.ybs.item(row))
        return (self.yb.item(row), self.ybs.item(row)) if side == 1 else (self.nb.item(row), self.yas.item(row))

    def depth(self, k: int, row: int, side: int, buy: bool) -> Sequence[tuple[float, float]]:
        if self.books is None:
            return ()
        return self.books.depth(k, int(self.ts[row]), side, buy, self.touch(row, side, buy)[0])

    def priced_by_trade(self, row: int) -> bool:
        return self.by_trade is not None and bool(self.by_trade[row])


def yes_payout(info: MarketInfo) -> Decimal | None:
    """What one YES contract of a resolved market pays; None without a result."""
    result = (info.result or "").lower()
    if result == "yes":
        return Decimal(1)
    if result == "no":
        return _ZERO
    if result == "scalar" and info.settlement_value is not None:
        return info.settlement_value
    return None


def _us(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def settlement_time_us(info: MarketInfo, last_row_us: int) -> int:
    """When a resolved market's result was known: its settlement time, else its close, else its last snapshot."""
    when = info.settled_at or info.close_time
    return _us(when) if when is not None else last_row_us


def _market_index(ds: Dataset) -> np.ndarray:
    counts = np.diff(ds.offsets)
    return np.repeat(np.arange(len(counts)), counts)


def _time_order(ds: Dataset) -> np.ndarray:
    """Global processing order: by time, ties by market then row (stable)."""
    return np.argsort(ds.ts_us, kind="stable")


def simulate(
    ds: Dataset,
    strategy: Strategy,
    params: StrategyParams,
    config: EngineConfig | None = None,
    progress: Progress | None = None,
    *,
    intents: Intents | None = None,
) -> SimulationResult:
    """Run ``strategy`` over ``ds``; pure computation (no database). ``intents``: the vectorised path's, when
    :func:`plan` already computed them (to load the order books they need first)."""
    cfg = config or EngineConfig()
    t0 = time.perf_counter() - (intents.seconds if intents is not None else 0.0)
    ds, by_trade = _quoted(ds, cfg)
    core = TradingCore([MarketSpec(m.ticker, m.fees) for m in ds.markets], DatasetQuotes(ds, by_trade), cfg)
    end_us = _us(ds.end)
    payouts: dict[str, Decimal] = {}
    assumed: list[str] = []
    last_settlement: int | None = None
    for k, info in enumerate(ds.markets):
        value = yes_payout(info)
        if value is None:
            continue
        at = settlement_time_us(info, int(ds.ts_us[int(ds.offsets[k + 1]) - 1]))
        if at < end_us:  # known inside the window; later, knowing it would be look-ahead
            core.schedule_settlement(k, at, value)
            payouts[info.ticker] = value
            last_settlement = at if last_settlement is None else max(last_settlement, at)
            if info.settled_at is None:
                assumed.append(info.ticker)
    vectorised = uses_vectorised(strategy, cfg)
    if ds.rows:
        if vectorised and intents is None:
            intents = plan(ds, strategy, params, cfg, progress)
        if vectorised and intents is not None and intents.usable:
            _run_vectorised(ds, core, intents, progress)
        else:
            vectorised = False
            _run_events(ds, strategy, params, core, progress)
    core.advance(_NEVER)
    core.expire_pending()
    unresolved = _mark_open(ds, core)
    pf = core.portfolio
    traded = {e.ticker for e in pf.executions}
    for e in pf.executions:
        value = payouts.get(e.ticker)
        if value is not None:
            e.outcome = float(value if e.side == "yes" else 1 - value)
    curve = _curve(ds, core, cfg, last_settlement)
    total = (pf.equity - cfg.initial_capital).quantize(_Q4)
    realised = pf.realised.quantize(_Q4)  # the unrealised part is the rest, so the two add up to the total exactly
    return SimulationResult(
        executions=pf.executions,
        fills=core.fills,
        fees_paid=pf.fees,
        initial_capital=cfg.initial_capital,
        final_cash=pf.cash,
        final_equity=pf.equity,
        total_pnl=total,
        realised_pnl=realised,
        unrealised_pnl=total - realised,
        unresolved_markets=unresolved,
        curve=curve,
        skipped=core.skipped,
        size_unknown_fills=core.size_unknown_fills,
        trade_priced_fills=core.trade_priced_fills,
        fill_model=cfg.fill_model.describe(),
        fee_model=describe_fee_model(cfg.fee_model),
        settlement_time_assumed=[t for t in assumed if t in traded],
        trades=pf.trades,
        snapshots=ds.rows,
        markets=len(ds.markets),
        path="vectorised" if vectorised else "per_event",
        simulate_seconds=time.perf_counter() - t0,
        causal_check=intents.causal.describe() if intents is not None and intents.causal is not None else None,
    )


def _quoted(ds: Dataset, cfg: EngineConfig) -> tuple[Dataset, BoolArray | None]:
    """What strategies and fills see: snapshots with a trade and no quote quoted at the trade, when the fill
    model says so (:mod:`.trade_quotes`)."""
    return quote_trades(ds) if cfg.fill_model.trade_quotes else (ds, None)


def _mark_open(ds: Dataset, core: TradingCore) -> list[str]:
    """Mark what is still held (markets without a result in the window) at the last bid of its side."""
    unresolved: list[str] = []
    for k, side in core.portfolio.open_keys():
        a, last = int(ds.offsets[k]), int(ds.offsets[k + 1]) - 1
        col = ds.columns["yes_bid" if side == 1 else "no_bid"][a : last + 1]
        finite = col[np.isfinite(col)]
        mark = price_of(float(finite[-1])) if len(finite) else _ZERO
        core.mark(k, side, mark, int(ds.ts_us[last]), SOURCES[int(ds.source[last])])
        ticker = ds.markets[k].ticker
        if ticker not in unresolved:
            unresolved.append(ticker)
    return unresolved


def _curve(ds: Dataset, core: TradingCore, cfg: EngineConfig, last_settlement: int | None) -> EquityCurve:
    start_us = _us(ds.start)
    capital = float(cfg.initial_capital)
    if ds.rows == 0:
        return flat_curve(start_us, capital, cfg.equity_interval_seconds)
    last = int(ds.ts_us.max())
    if last_settlement is not None:
        last = max(last, last_settlement)
    tape = MarkTape(ds.offsets, ds.ts_us, ds.columns["yes_bid"], ds.columns["no_bid"])
    return equity_curve(
        core.portfolio.events,
        capital,
        tape,
        start_us=start_us,
        end_us=min(_us(ds.end), last),
        first_data_us=int(ds.ts_us.min()),
        interval_seconds=cfg.equity_interval_seconds,
        final_equity=float(core.portfolio.equity),
    )


@dataclass
class Intents:
    """Every intent of a vectorised run, unordered: decision row, fill row, signal set, side, action, size, limit;
    ``late`` counts those with no snapshot to fill on after the latency."""

    decided: np.ndarray
    fill: np.ndarray
    set_index: np.ndarray
    side: np.ndarray
    action: np.ndarray
    size: np.ndarray
    limit: np.ndarray
    sets: list[tuple[int, int, Any]]  # (market, its first row, the SignalArrays)
    late: int = 0
    seconds: float = 0.0  # what computing them took (part of the simulation's time)
    #: The check that ``signals`` is causal on this data; when it failed, the run takes the per-event path.
    causal: CausalCheck | None = None

    @property
    def usable(self) -> bool:
        return self.causal is None or self.causal.passed


def uses_vectorised(strategy: Strategy, cfg: EngineConfig) -> bool:
    return strategy.has_signals() if cfg.vectorised is None else (cfg.vectorised and strategy.has_signals())


def plan(
    ds: Dataset,
    strategy: Strategy,
    params: StrategyParams,
    config: EngineConfig | None = None,
    progress: Progress | None = None,
) -> Intents:
    """The vectorised path's intents over ``ds``, with the check that the strategy's signals are causal on it
    (:mod:`.causality`): when that fails, the intents are empty and ``usable`` is false; a strategy with no
    ``on_event`` to fall back on raises :class:`~.causality.NotCausalError` instead."""
    cfg = config or EngineConfig()
    t0 = time.perf_counter()
    ds, _ = _quoted(ds, cfg)
    checker = CausalChecker(strategy, params, len(ds.markets))
    latency = round(cfg.fill_model.latency_seconds * 1_000_000)
    parts: list[tuple[np.ndarray, ...]] = []
    sets: list[tuple[int, int, Any]] = []
    m = len(ds.markets)
    late = 0
    for k in range(m):
        a, b = int(ds.offsets[k]), int(ds.offsets[k + 1])
        arrays = ds.market(k)
        full = strategy.signals(arrays, params)
        checker.feed(k, arrays, full)
        if checker.problem is not None:
            if not strategy.has_on_event():
                raise checker.refusal()
            empty = np.zeros(0, np.int64)
            return Intents(
                empty, empty, empty, empty, empty, empty, empty, [], 0, time.perf_counter() - t0, checker.result()
            )
        for sig in full:
            idx = np.flatnonzero(sig.side)
            if not len(idx):
                continue
            fill = idx
            if latency:
                ts = ds.ts_us[a:b]
                fill = np.searchsorted(ts, ts[idx] + latency, side="left")
                keep = fill < b - a  # no snapshot of this market after the latency: the intent never fills
                late += int((~keep).sum())
                idx, fill = idx[keep], fill[keep]
            limit = sig.limit[idx] if sig.limit is not None else np.full(len(idx), np.nan)
            parts.append(
                (idx + a, fill + a, np.full(len(idx), len(sets)), sig.side[idx], sig.action[idx], sig.size[idx], limit)
            )
            sets.append((k, a, sig))
        if progress is not None and (k % 50 == 0 or k == m - 1):
            progress("signals", k + 1, m)
    causal = checker.result()
    if not parts:
        empty = np.zeros(0, np.int64)
        return Intents(empty, empty, empty, empty, empty, empty, empty, [], late, time.perf_counter() - t0, causal)
    decided, fill_at, set_index, side, action, size, limit = (np.concatenate(c) for c in zip(*parts, strict=True))
    return Intents(decided, fill_at, set_index, side, action, size, limit, sets, late, time.perf_counter() - t0, causal)


def book_points(ds: Dataset, intents: Intents) -> dict[int, np.ndarray]:
    """Per market, the fill times of the intents larger than the displayed touch (or where no size was
    recorded): the only moments a book-walking fill model needs recorded depth."""
    if not len(intents.fill):
        return {}
    yes_book = (intents.side == 1) == (intents.action > 0)  # buy YES / sell NO take the YES asks
    shown = np.where(yes_book, ds.columns["yes_ask_size"][intents.fill], ds.columns["yes_bid_size"][intents.fill])
    with np.errstate(invalid="ignore"):
        wanted = ~(intents.size <= shown)  # NaN: not recorded
    rows = np.unique(intents.fill[wanted])
    market = np.searchsorted(ds.offsets, rows, side="right") - 1
    return {int(k): ds.ts_us[rows[market == k]] for k in np.unique(market)}


def _run_vectorised(ds: Dataset, core: TradingCore, intents: Intents, progress: Progress | None) -> None:
    # The loop allocates a few small objects per fill (lots, ledger rows, signal records) and creates no cycles:
    # the cyclic collector's passes over the growing ledger found nothing and cost ~12% of it at a fill every 65
    # snapshots. Paused for the loop only.
    paused = gc.isenabled()
    gc.disable()
    try:
        _feed_intents(ds, core, intents, progress)
    finally:
        if paused:
            gc.enable()


def _feed_intents(ds: Dataset, core: TradingCore, intents: Intents, progress: Progress | None) -> None:
    if intents.late:
        core.skip("no_snapshot_after_latency", intents.late)
    if not len(intents.fill):
        return
    # By fill time; then decision time; within a row, the order of the strategy's signal list (= sets order).
    # Time order is (ts, row): rows are grouped by market, so ties go by market then row.
    ts = ds.ts_us
    sel = np.lexsort((intents.set_index, intents.decided, ts[intents.decided], intents.fill, ts[intents.fill]))
    decided = intents.decided[sel]
    f_l = intents.fill[sel].tolist()
    s_l = intents.set_index[sel].tolist()
    side_l = intents.side[sel].tolist()
    buy_l = (intents.action[sel] > 0).tolist()
    size_l = intents.size[sel].tolist()
    limit_l = intents.limit[sel].tolist()
    reasons, j_l = _reasons(intents, decided, sel)
    sets = intents.sets
    dec: dict[float, Decimal] = {}
    total = len(sel)
    execute = core.execute
    # Intents run in fill-time order, so the settlements due before each one fall at known indices: run the
    # intents in chunks between those, settling at each boundary (no per-intent clock check).
    fill_ts = ts[intents.fill[sel]]
    cuts = np.unique(np.searchsorted(fill_ts, np.array(core.due_times(), np.int64), side="left")).tolist()
    step = 10_000
    lo = 0
    for hi in [*cuts, total]:
        if lo < hi <= total:
            for n in range(lo, hi):
                s = s_l[n]
                size = dec.get(size_l[n])
                if size is None:
                    size = dec[size_l[n]] = Decimal(repr(size_l[n]))
                execute(sets[s][0], f_l[n], side_l[n], buy_l[n], size, limit_l[n], _LazySignal(reasons[s], j_l[n]))
            if progress is not None and hi // step != lo // step:
                progress("execute", hi, total)
            lo = hi
        if hi < total:
            core.advance(int(fill_ts[hi]))


def _reasons(intents: Intents, decided: np.ndarray, sel: np.ndarray) -> tuple[list[_Reasons], list[int]]:
    """Per signal set, its reason values at the rows of its intents as Python values (one vectorised gather per
    set, so a filled intent's record is a dict away); and per intent (``sel`` order) its index into its set's."""
    out: list[_Reasons] = []
    set_of = intents.set_index[sel]
    order = np.argsort(set_of, kind="stable")
    j = np.empty(len(sel), np.int64)
    bounds = np.searchsorted(set_of[order], np.arange(len(intents.sets) + 1))
    for s, (_, a, sig) in enumerate(intents.sets):
        where = order[bounds[s] : bounds[s + 1]]
        j[where] = np.arange(len(where))
        rows = decided[where] - a
        out.append(_Reasons(sig.reason_name, [(key, arr[rows].tolist()) for key, arr in sig.reason.items()]))
    return out, j.tolist()


@dataclass(frozen=True, slots=True)
class _Reasons:
    name: str
    values: list[tuple[str, list[Any]]]


class _LazySignal:
    """The signal metadata of one vectorised intent, built only if the intent fills."""

    __slots__ = ("n", "reasons")

    def __init__(self, reasons: _Reasons, n: int) -> None:
        self.reasons, self.n = reasons, n

    def build(self) -> dict[str, Any]:
        r, j = self.reasons, self.n
        out: dict[str, Any] = {"signal": r.name}
        for key, values in r.values:
            out[key] = signal_value(values[j])
        return out


def _run_events(
    ds: Dataset, strategy: Strategy, params: StrategyParams, core: TradingCore, progress: Progress | None
) -> None:
    """The plain-Python path: one ``on_event`` call per snapshot, with a view that ends at that snapshot
    (:class:`~.feed.EventFeed`, the live runner's code too)."""
    order = _time_order(ds)
    market_of = _market_index(ds).tolist()
    table = np.column_stack([ds.field(f) for f in FIELDS])
    feed = EventFeed(strategy, params, core, [mi.ticker for mi in ds.markets], np.diff(ds.offsets).tolist())
    ts_l = ds.ts_us.tolist()
    step = feed.step
    total = len(order)
    every = max(total // 200, 1)
    for n, g in enumerate(order.tolist()):
        step(market_of[g], g, ts_l[g], table[g])
        if progress is not None and n % every == 0:
            progress("events", n, total)
