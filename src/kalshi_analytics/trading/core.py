"""The trading core: order intents → fill model → fees → portfolio → settlement → equity. No I/O.

A feeder (the backtest engine over recorded columns, or the live runner over the recorder's commits) owns the
data and the clock and calls, in data-time order:

- :meth:`TradingCore.schedule_settlement` once per market whose result is known: when it became known (the
  feeder's rule) and the YES payout;
- :meth:`TradingCore.advance` before handling anything at time ``t``: every market due by ``t`` settles, and its
  cash is available from then;
- :meth:`TradingCore.execute` for an intent filling on a snapshot (``row``, a handle its :class:`Quotes` reads),
  or :meth:`TradingCore.submit` + :meth:`TradingCore.fill_due` when the fill model has a latency;
- :meth:`TradingCore.mark` at the end for positions in markets without a result yet.

Everything an order needs from the data comes through :class:`Quotes` (prices as floats: they are recorded on
the 0.0001 grid and become ``Decimal`` at the fill). Orders are immediate-or-cancel takers: a buy takes asks,
a sell hits bids; the fill model sizes them (:mod:`.fills`), the fee model prices them (:mod:`.fees`), and a buy
is cut to the position limit and to the cash available (fees included). Intents that cannot fill are counted by
reason in :attr:`TradingCore.skipped`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

import numpy as np

from kalshi_analytics.strategies.base import Position
from kalshi_analytics.trading.fees import FeeModel, KalshiFeeModel, SeriesFees
from kalshi_analytics.trading.fills import DisplayedLiquidity, FillModel, Level
from kalshi_analytics.trading.portfolio import Portfolio

YES, NO = 1, 2
_TICK = Decimal("0.0001")
_ZERO = Decimal(0)
_ONE = Decimal(1)
#: Decimal places kept of a float signal value: prices are on a 0.0001 grid and their mids on 0.00005, so six
#: places keep every value the data can produce and drop binary noise (−0.020000000000000018 → −0.02).
SIGNAL_DIGITS = 6


_PRICES: dict[float, Decimal] = {}
_COUNTS: dict[float, Decimal] = {}
_CACHE_MAX = 1 << 16  # distinct floats remembered; prices live on a 10,001-point grid, sizes repeat


def price_of(x: float) -> Decimal:
    """A recorded float price as the exact ``Decimal`` on the 0.0001 grid it came from."""
    d = _PRICES.get(x)
    if d is None:
        if len(_PRICES) >= _CACHE_MAX:
            _PRICES.clear()
        d = _PRICES[x] = Decimal(repr(round(x, 4))).quantize(_TICK)
    return d


def count_of(x: float) -> Decimal:
    """A recorded float count as an exact ``Decimal`` (counts are recorded to 0.01 at most)."""
    d = _COUNTS.get(x)
    if d is None:
        if len(_COUNTS) >= _CACHE_MAX:
            _COUNTS.clear()
        d = _COUNTS[x] = Decimal(repr(round(x, 6)))
    return d


_COMPLEMENTS: dict[Decimal, Decimal] = {}


def complement(p: Decimal) -> Decimal:
    """``1 − p``, remembered: a NO price seen as a YES price (or back). Hashing a new Decimal costs ~10 times a
    dict lookup by one already hashed, and the books are keyed by these."""
    c = _COMPLEMENTS.get(p)
    if c is None:
        if len(_COMPLEMENTS) >= _CACHE_MAX:
            _COMPLEMENTS.clear()
        c = _COMPLEMENTS[p] = _ONE - p
    return c


_FLOATS = (float, np.floating)  # tuples: a union (float | np.floating) would be built on every call
_BOOLS = (bool, np.bool_)
_INTS = (int, np.integer)
_ROUNDED: dict[float, float] = {}  # signal values repeat (moves are whole ticks): round each once


def signal_value(v: Any) -> Any:  # noqa: PLR0911 - one return per kind
    """One reason value as JSON: a float rounded to :data:`SIGNAL_DIGITS` places (NaN → null), a Decimal as text."""
    if type(v) is float or isinstance(v, _FLOATS):  # the common case first (np.float64 is a float)
        f = float(v)
        r = _ROUNDED.get(f)
        if r is None:
            if not math.isfinite(f):
                return None
            if len(_ROUNDED) >= _CACHE_MAX:
                _ROUNDED.clear()
            r = _ROUNDED[f] = round(f, SIGNAL_DIGITS) + 0.0  # + 0.0: no "-0.0"
        return r
    if type(v) is str:
        return v
    if isinstance(v, _BOOLS):
        return bool(v)
    if isinstance(v, _INTS):
        return int(v)
    if isinstance(v, Decimal):
        return str(v)
    return v


def signal_record(reason: Mapping[str, Any]) -> dict[str, Any]:
    """A strategy's reason as JSON: floats rounded to :data:`SIGNAL_DIGITS` places (NaN → null), Decimals as text."""
    return {key: signal_value(v) for key, v in reason.items()}


class LazySignal(Protocol):
    """A signal record built only if its intent fills (vectorised paths have millions of intents)."""

    def build(self) -> dict[str, Any]: ...


class Quotes(Protocol):
    """The recorded market state the core fills against; ``row`` is the feeder's handle of one snapshot."""

    def ts_us(self, row: int) -> int:
        """Exchange time of the snapshot, Unix microseconds."""
        ...

    def source(self, row: int) -> str:
        """Where the snapshot came from (poll | websocket | backfill)."""
        ...

    def touch(self, row: int, side: int, buy: bool) -> tuple[float, float]:
        """Best price an order of ``side`` (1 YES, 2 NO) takes (asks to buy, bids to sell) and its displayed size;
        NaN for what was not recorded."""
        ...

    def depth(self, k: int, row: int, side: int, buy: bool) -> Sequence[tuple[float, float]]:
        """Recorded levels *beyond* the touch, best first, for the same order (empty when none are known)."""
        ...

    def priced_by_trade(self, row: int) -> bool:
        """Whether the snapshot's quote is its last trade price, none having been recorded (the fill model's
        ``trade_quotes``); fills on it are counted apart and flag the result."""
        ...


@dataclass(frozen=True)
class MarketSpec:
    ticker: str
    fees: SeriesFees = field(default_factory=SeriesFees)


@dataclass(frozen=True)
class CoreConfig:
    initial_capital: Decimal = Decimal(10_000)
    max_position: Decimal = Decimal(10_000)  # contracts per market and side
    contract_step: Decimal = Decimal(1)  # sizes are rounded down to this (whole contracts; 0.01 where fractional)
    fee_model: FeeModel = field(default_factory=KalshiFeeModel)
    fill_model: FillModel = field(default_factory=DisplayedLiquidity)


@dataclass(slots=True)
class _Pending:
    due_us: int
    side: int
    buy: bool
    size: Decimal
    limit: float
    signal: dict[str, Any] | LazySignal


class _Book:
    """Liquidity taken from one side of a market's book since its touch (in YES dollars) was last seen to move:
    {YES price: contracts}; ``yes``/``no`` read it at an order's price for that contract. One per book, cleared
    when the touch moves (it moves between most fills)."""

    __slots__ = ("no", "taken", "touch", "yes")

    def __init__(self, touch: Decimal) -> None:
        self.touch = touch
        self.taken: dict[Decimal, Decimal] = {}
        taken = self.taken
        self.yes: Callable[[Decimal], Decimal] = lambda p: taken.get(p, _ZERO)
        self.no: Callable[[Decimal], Decimal] = lambda p: taken.get(complement(p), _ZERO)


class TradingCore:
    """One account trading many markets; see the module docstring for the calling protocol."""

    def __init__(self, markets: Sequence[MarketSpec], quotes: Quotes, config: CoreConfig | None = None) -> None:
        self.cfg = cfg = config or CoreConfig()
        self.markets = markets
        self.quotes = quotes
        self.portfolio = Portfolio([m.ticker for m in markets], cfg.initial_capital)
        self.fills = 0
        self.size_unknown_fills = 0
        self.trade_priced_fills = 0
        self.skipped: dict[str, int] = {}
        self.settled: set[int] = set()
        self.latency_us = round(cfg.fill_model.latency_seconds * 1_000_000)
        self._step = cfg.contract_step
        self._step_f = float(cfg.contract_step)
        self._max_position = cfg.max_position
        self._model = cfg.fill_model
        self._cash_f = math.inf  # a float mirror, to skip hopeless buys before any Decimal work (_sync_cash)
        self._sync_cash()
        self._touch = quotes.touch
        self._due: list[tuple[int, int, Decimal]] = []  # heap of (when, k, YES payout)
        self._pending: dict[int, deque[_Pending]] = {}
        # Liquidity taken per (market, book) since its touch last moved (:class:`_Book`).
        # Book 0 holds the YES asks (buy YES, sell NO), book 1 the YES bids (sell YES, buy NO).
        self._taken: dict[tuple[int, int], _Book] = {}
        # Fees are a function of (series, price, count) and fills repeat those: remember them per series.
        series_ids: dict[SeriesFees, int] = {}
        self._series_of = [series_ids.setdefault(m.fees, len(series_ids)) for m in markets]
        self._fee_memo: dict[tuple[int, Decimal, Decimal], Decimal] = {}
        self._steps: dict[Decimal, Decimal] = {}  # _whole_steps

    # ------------------------------------------------------------------------------------------------ state
    @property
    def cash(self) -> Decimal:
        return self.portfolio.cash

    def position(self, k: int) -> Position:
        return self.portfolio.position(k)

    def restored(self, fills: int, skipped: Mapping[str, int]) -> None:
        """After the portfolio was rebuilt from stored fills (a paper session resuming): its counters and cash."""
        self.fills = fills
        self.skipped = dict(skipped)
        self._sync_cash()

    def skip(self, why: str, n: int = 1) -> None:
        skipped = self.skipped
        skipped[why] = skipped.get(why, 0) + n

    # ------------------------------------------------------------------------------------------- settlement
    def schedule_settlement(self, k: int, at_us: int, yes_value: Decimal) -> None:
        """Market ``k`` pays ``yes_value`` per YES contract (1 − that per NO) from ``at_us`` on."""
        heapq.heappush(self._due, (at_us, k, yes_value))

    def next_settlement_us(self) -> int | None:
        return self._due[0][0] if self._due else None

    def due_times(self) -> list[int]:
        """When the scheduled settlements fall (unordered)."""
        return [at for at, _, _ in self._due]

    def advance(self, now_us: int) -> None:
        """Settle every market due at or before ``now_us``: its positions close and its cash is available."""
        due = self._due
        while due and due[0][0] <= now_us:
            at, k, yes_value = heapq.heappop(due)
            self.portfolio.settle(k, YES, yes_value, at)
            self.portfolio.settle(k, NO, _ONE - yes_value, at)
            self.settled.add(k)
            self._sync_cash()

    def mark(self, k: int, side: int, price: Decimal, ts_us: int, source: str | None) -> None:
        """Value an open position of a market without a result (yet) at ``price``; it stays unrealised."""
        self.portfolio.mark(k, side, price, ts_us, source)

    # -------------------------------------------------------------------------------------------- latency
    def submit(  # noqa: PLR0917 - positional like execute
        self,
        k: int,
        decided_us: int,
        side: int,
        buy: bool,
        size: Decimal,
        limit: float,
        signal: dict[str, Any] | LazySignal,
    ) -> None:
        """Queue an intent decided at ``decided_us``; it fills on market ``k``'s first snapshot at or after
        ``decided_us`` + the fill model's latency (:meth:`fill_due`)."""
        self._pending.setdefault(k, deque()).append(
            _Pending(decided_us + self.latency_us, side, buy, size, limit, signal)
        )

    def fill_due(self, k: int, row: int) -> None:
        """Fill market ``k``'s queued intents that are due at snapshot ``row``, in the order they were decided."""
        queue = self._pending.get(k)
        if not queue:
            return
        now = self.quotes.ts_us(row)
        while queue and queue[0].due_us <= now:
            p = queue.popleft()
            self.execute(k, row, p.side, p.buy, p.size, p.limit, p.signal)

    def expire_pending(self) -> None:
        """Intents still queued at the end had no snapshot to fill on."""
        for queue in self._pending.values():
            if queue:
                self.skip("no_snapshot_after_latency", len(queue))
                queue.clear()

    # ------------------------------------------------------------------------------------------ execution
    def execute(  # noqa: PLR0911, PLR0912, PLR0915, PLR0917 - the hot path: one flat function, positional for speed
        self,
        k: int,
        row: int,
        side: int,
        buy: bool,
        size: Decimal,
        limit: float,
        signal: dict[str, Any] | LazySignal,
    ) -> None:
        """Fill an intent on snapshot ``row`` of market ``k`` now (``limit`` NaN = none)."""
        pf = self.portfolio
        key = (k, side)
        held = pf.held.get(key, _ZERO)
        # The common refusals first, cheaply (vectorised strategies send millions of intents that cannot fill).
        if buy:
            if k in self.settled:
                return self.skip("settled")
            if held >= self._max_position:
                return self.skip("position_limit")
        elif held <= 0:  # also after a settlement: nothing is held any more
            return self.skip("nothing_to_sell")
        px, shown = self._touch(row, side, buy)
        if not (px > 0 and px < 1):  # NaN (no quote) or an empty side
            return self.skip("no_quote")
        if buy and self._cash_f < px * self._step_f * 0.999:
            return self.skip("capital")
        no_limit = math.isnan(limit)
        if not no_limit and (px > limit if buy else px < limit):
            return self.skip("limit_not_crossed")
        step = self._step
        # min() written out: the builtin costs several times a comparison of two Decimals.
        cap = self._max_position - held if buy else held
        want = self._whole_steps(size if size <= cap else cap)
        if want <= 0:
            return self.skip("position_limit" if buy else "nothing_to_sell")
        price = price_of(px)
        state = self._book_state(k, side, buy, price)
        taken = state.yes if side == YES else state.no
        lim = None if no_limit else price_of(limit)
        touch = Level(price, None if math.isnan(shown) else count_of(shown))
        model = self._model
        fill = model.fill((touch,), want, buy=buy, limit=lim, step=step, taken=taken)
        if fill.contracts < want and model.walks_book:
            deeper = self.quotes.depth(k, row, side, buy)
            if deeper:
                levels = [touch, *(Level(price_of(p), None if math.isnan(s) else count_of(s)) for p, s in deeper)]
                fill = model.fill(levels, want, buy=buy, limit=lim, step=step, taken=taken)
        if not fill.parts:
            return self.skip("no_liquidity")
        got = fill.parts
        if len(got) == 1 and got[0][1] == want:  # usually: the whole order at the touch
            got = ((got[0][0], want),)  # the same Decimal (value and step), and already hashed: see _whole_steps
        if buy:
            parts = self._afford(k, got)
        else:
            parts = []
            for p, c in got:
                parts.append((p, c, self._fee(k, p, c)))
        if not parts:
            return self.skip("capital")
        quotes = self.quotes
        ts_us = quotes.ts_us(row)
        source = quotes.source(row)
        record = signal if isinstance(signal, dict) else signal.build()
        book = state.taken
        for p, c, fee in parts:
            if buy:
                pf.buy(k, side, p, c, fee, ts_us, source, record)
            else:
                pf.sell(k, side, p, c, fee, ts_us, source, record)
            yes_p = p if side == YES else complement(p)
            book[yes_p] = book.get(yes_p, _ZERO) + c
        self.fills += len(parts)
        if fill.size_unknown:
            self.size_unknown_fills += len(parts)
        if quotes.priced_by_trade(row):
            self.trade_priced_fills += len(parts)
        self._sync_cash()
        return None

    def _whole_steps(self, x: Decimal) -> Decimal:
        """``x`` rounded down to the contract step, remembered: the same object for the same size each time (the
        result's digits depend on the value alone), so the fee memo and the ledger hash it once."""
        q = self._steps.get(x)
        if q is None:
            if len(self._steps) >= _CACHE_MAX:
                self._steps.clear()
            q = self._steps[x] = x.quantize(self._step, ROUND_DOWN)
        return q

    def _sync_cash(self) -> None:
        """Refresh the float mirror of the cash. While the cash covers a contract step, no buy can fail the
        mirror's check (a price is below $1), so the mirror need not be exact then: converting a Decimal to a
        float costs more than comparing two Decimals."""
        cash = self.portfolio.cash
        self._cash_f = math.inf if cash >= self._step else float(cash)

    def _book_state(self, k: int, side: int, buy: bool, touch: Decimal) -> _Book:
        """The liquidity taken from the book this order takes (forgotten when its touch moved)."""
        book_key = (k, 0 if (side == YES) == buy else 1)
        touch_yes = touch if side == YES else complement(touch)
        state = self._taken.get(book_key)
        if state is None:
            state = self._taken[book_key] = _Book(touch_yes)
        elif state.touch != touch_yes:
            state.touch = touch_yes
            state.taken.clear()
        return state

    def _fee(self, k: int, price: Decimal, count: Decimal) -> Decimal:
        """The fee model's taker fee of one fill in market ``k``, remembered."""
        key = (self._series_of[k], price, count)
        fee = self._fee_memo.get(key)
        if fee is None:
            if len(self._fee_memo) >= _CACHE_MAX:
                self._fee_memo.clear()
            fee = self._fee_memo[key] = self.cfg.fee_model.fee(price, count, series=self.markets[k].fees)
        return fee

    def _afford(self, k: int, parts: Sequence[tuple[Decimal, Decimal]]) -> list[tuple[Decimal, Decimal, Decimal]]:
        """The buy parts the cash pays for, fees included: whole parts while they fit, then the largest multiple
        of the contract step of the next one (by bisection over the fee model, which may round)."""
        step = self.cfg.contract_step
        cash = self.portfolio.cash
        out: list[tuple[Decimal, Decimal, Decimal]] = []
        for p, c in parts:
            fee = self._fee(k, p, c)
            cost = c * p + fee
            if cost <= cash:
                out.append((p, c, fee))
                cash -= cost
                continue
            lo, hi = 0, int(min(c, cash / p) / step)  # in steps; lo always affordable
            while lo < hi:
                mid = (lo + hi + 1) // 2
                n = step * mid
                if n * p + self._fee(k, p, n) <= cash:
                    lo = mid
                else:
                    hi = mid - 1
            if lo > 0:
                n = step * lo
                out.append((p, n, self._fee(k, p, n)))
            break
        return out
