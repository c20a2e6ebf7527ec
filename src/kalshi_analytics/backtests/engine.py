"""The backtest engine: simulate a strategy over a :class:`~.data.Dataset` with honest fills and Kalshi fees.

Two paths over the same executor:

- vectorised: a strategy with ``signals`` computes every intent of a market at once (floats, numpy — the
  "kernel"); the engine merges the intents of all markets in time order and executes them;
- per event: the engine walks every snapshot of every market in time order, appends it to that market's
  buffer and calls ``on_event`` with a view of the buffer up to that snapshot (look-ahead impossible).

The executor is sequential and exact: prices become ``Decimal`` at the fill, fees are ``Decimal`` rounded up to the
cent per fill, cash, P&L per execution and totals are ``Decimal``. Fills: buys at the ask (YES ask, or the NO
ask = 1 − YES bid), sells at the bid, capped by the displayed size when recorded, by the position limit and
by the cash available. At the end, positions in markets with a result settle at $1/$0 (``exit_reason
'settlement'``); positions in unresolved markets are marked at the last bid of their side and flagged
(``'marked'``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np

from kalshi_analytics.backtests.data import SOURCES, Dataset, MarketInfo
from kalshi_analytics.backtests.fees import FeeModel, KalshiFeeModel
from kalshi_analytics.strategies.base import (
    FIELDS,
    MarketView,
    OrderIntent,
    Position,
    Strategy,
    StrategyParams,
)

Progress = Callable[[str, int, int], None]  # (phase, done, total)
_TICK = Decimal("0.0001")
_Q4 = Decimal("0.0001")
_SIDES = ("", "yes", "no")
_ZERO = Decimal(0)


@dataclass(frozen=True)
class EngineConfig:
    initial_capital: Decimal = Decimal(10_000)
    max_position: Decimal = Decimal(10_000)  # contracts per market and side
    contract_step: Decimal = Decimal(1)  # sizes are rounded down to this (whole contracts; 0.01 where fractional)
    fee_model: FeeModel = field(default_factory=KalshiFeeModel)
    vectorised: bool | None = None  # None: use ``signals`` when the strategy has it


@dataclass
class Execution:
    """One position lot from entry to exit (a partial sell splits a lot). Money in Decimal."""

    ticker: str
    side: str
    size: Decimal
    entry_ts: datetime
    entry_price: Decimal
    entry_snapshot_ts: datetime
    entry_snapshot_source: str
    fees: Decimal
    exit_ts: datetime | None = None
    exit_price: Decimal | None = None
    exit_snapshot_ts: datetime | None = None
    exit_snapshot_source: str | None = None
    exit_reason: str | None = None  # signal | settlement | marked
    pnl: Decimal | None = None
    signal: dict[str, Any] = field(default_factory=dict)
    outcome: float | None = None  # 1.0 if this side won, 0.0 if it lost, None if unresolved


@dataclass
class SimulationResult:
    executions: list[Execution]
    fills: int
    fees_paid: Decimal
    final_cash: Decimal
    initial_capital: Decimal
    total_pnl: Decimal
    unresolved_markets: list[str]
    equity_ts: np.ndarray  # Unix seconds
    equity: np.ndarray
    snapshots: int
    markets: int
    path: str
    simulate_seconds: float
    skipped: dict[str, int]


def _dt(ts_us: int) -> datetime:
    return datetime.fromtimestamp(ts_us / 1e6, UTC).replace(microsecond=ts_us % 1_000_000)


def _price(x: float) -> Decimal:
    return Decimal(repr(round(x, 4))).quantize(_TICK)


@dataclass
class _Lot:
    size: Decimal
    price: Decimal
    fee: Decimal
    row: int
    signal: dict[str, Any]


class _Executor:
    """Sequential fills, positions, cash; every amount is Decimal."""

    def __init__(self, ds: Dataset, cfg: EngineConfig) -> None:
        self.ds = ds
        self.cfg = cfg
        self.cash = cfg.initial_capital
        self.cash_f = float(cfg.initial_capital)  # a float mirror, only to skip hopeless buys before any Decimal work
        self.lots: dict[tuple[int, int], deque[_Lot]] = {}
        self.held: dict[tuple[int, int], Decimal] = {}
        self.executions: list[Execution] = []
        self.fills = 0
        self.fees = Decimal(0)
        self.skipped: dict[str, int] = {}
        # For the equity curve (floats): (ts_us, market, side, Δcontracts, Δcash)
        self.events: list[tuple[int, int, int, float, float]] = []
        c = ds.columns
        self.cols = (c["yes_bid"], c["yes_ask"], c["no_bid"], c["no_ask"], c["yes_bid_size"], c["yes_ask_size"])

    def _skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def position(self, k: int) -> Position:
        y = self.held.get((k, 1), Decimal(0))
        n = self.held.get((k, 2), Decimal(0))
        return Position(y, n)

    def execute(  # noqa: PLR0911, PLR0912, PLR0915, PLR0917 - the hot path: one flat function, positional for speed
        self, k: int, g: int, side: int, buy: bool, size: Decimal, limit: float, signal: dict[str, Any] | _LazySignal
    ) -> None:
        key = (k, side)
        held = self.held.get(key, _ZERO)
        if buy:
            if held >= self.cfg.max_position:
                return self._skip("position_limit")
        elif held <= 0:
            return self._skip("nothing_to_sell")
        yb, ya, nb, na, ybs, yas = self.cols
        if buy:
            px = float(ya[g] if side == 1 else na[g])
            shown = float(yas[g] if side == 1 else ybs[g])  # NO asks are the YES bids
        else:
            px = float(yb[g] if side == 1 else nb[g])
            shown = float(ybs[g] if side == 1 else yas[g])
        if not (px > 0 and px < 1):  # NaN (no quote) or an empty side
            return self._skip("no_quote")
        if buy and self.cash_f < px * float(self.cfg.contract_step) * 0.999:
            return self._skip("capital")
        if not math.isnan(limit) and (px > limit if buy else px < limit):
            return self._skip("limit_not_crossed")
        step = self.cfg.contract_step
        if not math.isnan(shown):
            size = min(size, Decimal(repr(shown)).quantize(step, ROUND_DOWN))
        price = _price(px)
        info = self.ds.markets[k]
        if buy:
            size = min(size, self.cfg.max_position - held).quantize(step, ROUND_DOWN)
            if size <= 0:
                return self._skip("position_limit")
            if self.cash < price * step:
                return self._skip("capital")
            fee = self.cfg.fee_model.fee(price, size, series=info.fees)
            if size * price + fee > self.cash:
                per = price * Decimal("1.07") + Decimal("0.01")
                size = min(size, (self.cash / per).quantize(step, ROUND_DOWN))
                while size > 0:
                    fee = self.cfg.fee_model.fee(price, size, series=info.fees)
                    if size * price + fee <= self.cash:
                        break
                    size -= step
                if size <= 0:
                    return self._skip("capital")
            self.cash -= size * price + fee
            self.cash_f = float(self.cash)
            if isinstance(signal, _LazySignal):
                signal = signal.build()
            self.lots.setdefault(key, deque()).append(_Lot(size, price, fee, g, signal))
            self.held[key] = held + size
            self.events.append((int(self.ds.ts_us[g]), k, side, float(size), -float(size * price + fee)))
        else:
            size = min(size, held).quantize(step, ROUND_DOWN)
            if size <= 0:
                return self._skip("nothing_to_sell")
            fee = self.cfg.fee_model.fee(price, size, series=info.fees)
            self.cash += size * price - fee
            self.cash_f = float(self.cash)
            self.held[key] = held - size
            self.events.append((int(self.ds.ts_us[g]), k, side, -float(size), float(size * price - fee)))
            exit_signal = signal.build() if isinstance(signal, _LazySignal) else signal
            self._close(k, side, size, price, fee, g, "signal", None, exit_signal)
        self.fills += 1
        self.fees += fee

    def _close(  # noqa: PLR0917 - internal, called from two places
        self,
        k: int,
        side: int,
        size: Decimal,
        price: Decimal,
        fee: Decimal,
        g: int | None,
        reason: str,
        when: int | None,
        exit_signal: dict[str, Any] | None = None,
    ) -> None:
        """Close ``size`` contracts FIFO at ``price``; the exit fee is shared pro rata (to 0.0001, remainder last)."""
        lots = self.lots[(k, side)]
        remaining, fee_left = size, fee
        ts_us = int(self.ds.ts_us[g]) if g is not None else int(when or 0)
        while remaining > 0:
            lot = lots[0]
            take = min(lot.size, remaining)
            remaining -= take
            exit_fee = fee_left if remaining == 0 else (fee * take / size).quantize(_Q4)
            fee_left -= exit_fee
            if take == lot.size:
                entry_fee = lot.fee
                lots.popleft()
            else:
                entry_fee = (lot.fee * take / lot.size).quantize(_Q4)
                lot.fee -= entry_fee
                lot.size -= take
            fees = entry_fee + exit_fee
            info = self.ds.markets[k]
            payout = _payout(info, side, self.ds.end)
            self.executions.append(
                Execution(
                    ticker=info.ticker,
                    side=_SIDES[side],
                    size=take,
                    entry_ts=_dt(int(self.ds.ts_us[lot.row])),
                    entry_price=lot.price,
                    entry_snapshot_ts=_dt(int(self.ds.ts_us[lot.row])),
                    entry_snapshot_source=SOURCES[int(self.ds.source[lot.row])],
                    fees=fees,
                    exit_ts=_dt(ts_us),
                    exit_price=price,
                    exit_snapshot_ts=_dt(ts_us) if g is not None else None,
                    exit_snapshot_source=SOURCES[int(self.ds.source[g])] if g is not None else None,
                    exit_reason=reason,
                    pnl=(take * (price - lot.price) - fees).quantize(_Q4),
                    signal={**lot.signal, "exit": exit_signal} if exit_signal else lot.signal,
                    outcome=float(payout) if payout is not None else None,
                )
            )

    def settle(self) -> list[str]:
        """Settle or mark every open position at the end of the window; returns the marked (unresolved) tickers."""
        unresolved: list[str] = []
        for (k, side), held in sorted(self.held.items()):
            if held <= 0:
                continue
            info = self.ds.markets[k]
            last = int(self.ds.offsets[k + 1]) - 1
            payout = _payout(info, side, self.ds.end)
            if payout is not None:
                self.cash += held * payout
                self.events.append((int(self.ds.ts_us[last]), k, side, -float(held), float(held * payout)))
                self._close(k, side, held, payout, Decimal(0), None, "settlement", int(self.ds.ts_us[last]))
            else:
                col = self.ds.columns["yes_bid" if side == 1 else "no_bid"][: last + 1][int(self.ds.offsets[k]) :]
                finite = col[np.isfinite(col)]
                mark = _price(float(finite[-1])) if len(finite) else Decimal(0)
                self.cash += held * mark
                self.events.append((int(self.ds.ts_us[last]), k, side, -float(held), float(held * mark)))
                self._close(k, side, held, mark, Decimal(0), last, "marked", None)
                if info.ticker not in unresolved:
                    unresolved.append(info.ticker)
            self.held[(k, side)] = Decimal(0)
        return unresolved


def _payout(info: MarketInfo, side: int, end: datetime) -> Decimal | None:
    """$ per contract of ``side`` at settlement, or None when the market is unresolved within the window."""
    result = (info.result or "").lower()
    if info.close_time is not None and info.close_time > end:
        return None  # settles after the window: knowing the result now would be look-ahead
    if result == "yes":
        yes = Decimal(1)
    elif result == "no":
        yes = Decimal(0)
    elif result == "scalar" and info.settlement_value is not None:
        yes = info.settlement_value
    else:
        return None
    return yes if side == 1 else 1 - yes


def _signal_dict(reason: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in reason.items():
        if isinstance(v, float | np.floating):
            f = float(v)
            out[key] = None if math.isnan(f) else f
        elif isinstance(v, Decimal):
            out[key] = str(v)
        else:
            out[key] = v
    return out


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
) -> SimulationResult:
    """Run ``strategy`` over ``ds``; pure computation (no database)."""
    cfg = config or EngineConfig()
    t0 = time.perf_counter()
    ex = _Executor(ds, cfg)
    vectorised = strategy.has_signals() if cfg.vectorised is None else (cfg.vectorised and strategy.has_signals())
    if ds.rows:
        if vectorised:
            _run_vectorised(ds, strategy, params, ex, progress)
        else:
            _run_events(ds, strategy, params, ex, progress)
    unresolved = ex.settle()
    eq_ts, eq = equity_curve(ds, ex.events, cfg.initial_capital)
    total = (ex.cash - cfg.initial_capital).quantize(_Q4)
    return SimulationResult(
        executions=ex.executions,
        fills=ex.fills,
        fees_paid=ex.fees,
        final_cash=ex.cash,
        initial_capital=cfg.initial_capital,
        total_pnl=total,
        unresolved_markets=unresolved,
        equity_ts=eq_ts,
        equity=eq,
        snapshots=ds.rows,
        markets=len(ds.markets),
        path="vectorised" if vectorised else "per_event",
        simulate_seconds=time.perf_counter() - t0,
        skipped=ex.skipped,
    )


def _run_vectorised(
    ds: Dataset, strategy: Strategy, params: StrategyParams, ex: _Executor, progress: Progress | None
) -> None:
    order = _time_order(ds)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    rows, meta, sides, actions, sizes, limits = [], [], [], [], [], []
    sets: list[Any] = []
    m = len(ds.markets)
    for k in range(m):
        a = int(ds.offsets[k])
        for sig in strategy.signals(ds.market(k), params):
            idx = np.flatnonzero(sig.side)
            if len(idx):
                rows.append(idx + a)
                meta.append(np.full(len(idx), len(sets), np.int64))
                sides.append(sig.side[idx])
                actions.append(sig.action[idx])
                sizes.append(sig.size[idx])
                limits.append(sig.limit[idx] if sig.limit is not None else np.full(len(idx), np.nan))
                sets.append((k, a, sig))
        if progress is not None and (k % 50 == 0 or k == m - 1):
            progress("signals", k + 1, m)
    if not rows:
        return
    g_all = np.concatenate(rows)
    s_all = np.concatenate(meta)
    # Time order of the rows; within a row, the order of the strategy's signal list (= sets order per market).
    sel = np.lexsort((s_all, rank[g_all]))
    g_l = g_all[sel].tolist()
    s_l = s_all[sel].tolist()
    side_l = np.concatenate(sides)[sel].tolist()
    buy_l = (np.concatenate(actions)[sel] > 0).tolist()
    size_l = np.concatenate(sizes)[sel].tolist()
    limit_l = np.concatenate(limits)[sel].tolist()
    dec: dict[float, Decimal] = {}
    total = len(sel)
    execute = ex.execute
    for n in range(total):
        g, si = g_l[n], s_l[n]
        k, a, sig = sets[si]
        size = dec.get(size_l[n])
        if size is None:
            size = dec[size_l[n]] = Decimal(repr(size_l[n]))
        execute(k, g, side_l[n], buy_l[n], size, limit_l[n], _LazySignal(sig, g - a))
        if progress is not None and n % 10_000 == 0:
            progress("execute", n, total)


class _LazySignal:
    """The signal metadata of one vectorised intent, built only if the intent fills."""

    __slots__ = ("j", "sig")

    def __init__(self, sig: Any, j: int) -> None:
        self.sig, self.j = sig, j

    def build(self) -> dict[str, Any]:
        j = self.j
        return _signal_dict({"signal": self.sig.reason_name, **{k: arr[j] for k, arr in self.sig.reason.items()}})


def _run_events(
    ds: Dataset, strategy: Strategy, params: StrategyParams, ex: _Executor, progress: Progress | None
) -> None:
    """The plain-Python path: one ``on_event`` call per snapshot, with a view that ends at that snapshot."""
    order = _time_order(ds)
    market_of = _market_index(ds)
    table = np.column_stack([ds.columns[f] for f in FIELDS])
    m = len(ds.markets)
    buffers = [np.full((int(ds.offsets[k + 1] - ds.offsets[k]), len(FIELDS)), np.nan) for k in range(m)]
    closes = [mi.close_time.timestamp() if mi.close_time is not None else None for mi in ds.markets]
    tickers = [mi.ticker for mi in ds.markets]
    offsets = ds.offsets.tolist()
    positions: list[Position] = [Position() for _ in range(m)]
    on_event = strategy.on_event
    total = len(order)
    step = max(total // 200, 1)
    for n, g in enumerate(order.tolist()):
        k = int(market_of[g])
        j = g - offsets[k]
        buf = buffers[k]
        buf[j] = table[g]
        intents: Sequence[OrderIntent] = on_event(MarketView(tickers[k], buf, j + 1, closes[k]), positions[k], params)
        if intents:
            for it in intents:
                ex.execute(
                    k,
                    g,
                    1 if it.side == "yes" else 2,
                    it.action == "buy",
                    it.size,
                    float(it.limit) if it.limit is not None else math.nan,
                    _signal_dict(it.reason),
                )
            positions[k] = ex.position(k)
        if progress is not None and n % step == 0:
            progress("events", n, total)


def equity_curve(
    ds: Dataset, events: list[tuple[int, int, int, float, float]], initial: Decimal
) -> tuple[np.ndarray, np.ndarray]:
    """Equity at the end of each UTC day of the data (and at the last snapshot): cash + holdings × bid."""
    if ds.rows == 0:
        return np.zeros(0), np.zeros(0)
    first, last = int(ds.ts_us.min()), int(ds.ts_us.max())
    day = 86_400_000_000
    points = np.arange((first // day + 1) * day, last, day, dtype=np.int64)
    points = np.append(points, last)
    cash = np.full(len(points), float(initial))
    value = np.zeros(len(points))
    if events:
        ev = np.array([(e[0], e[1], e[2], e[3], e[4]) for e in events], dtype=np.float64)
        et = ev[:, 0].astype(np.int64)
        o = np.argsort(et, kind="stable")
        ev, et = ev[o], et[o]
        cum_cash = np.cumsum(ev[:, 4])
        idx = np.searchsorted(et, points, side="right")
        cash += np.where(idx > 0, cum_cash[np.maximum(idx - 1, 0)], 0.0)
        keys = ev[:, 1].astype(np.int64) * 4 + ev[:, 2].astype(np.int64)
        for key in np.unique(keys):
            mask = keys == key
            k, side = int(key // 4), int(key % 4)
            held = np.cumsum(ev[mask, 3])
            hidx = np.searchsorted(et[mask], points, side="right")
            h = np.where(hidx > 0, held[np.maximum(hidx - 1, 0)], 0.0)
            a, b = int(ds.offsets[k]), int(ds.offsets[k + 1])
            bid = ds.columns["yes_bid" if side == 1 else "no_bid"][a:b]
            bid = _ffill(bid)
            pidx = np.searchsorted(ds.ts_us[a:b], points, side="right")
            px = np.where(pidx > 0, bid[np.maximum(pidx - 1, 0)], 0.0)
            value += np.nan_to_num(h * px)
    return points / 1e6, cash + value


def _ffill(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    idx = np.where(ok, np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    out[~ok & (np.cumsum(ok) == 0)] = 0.0
    return out
