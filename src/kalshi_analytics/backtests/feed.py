"""The per-event path, one snapshot at a time: shared by the backtest engine and the live runner.

Each snapshot is appended to its market's buffer, the strategy is asked with a view that ends there, and its
intents go to the trading core. The backtest engine drives a :class:`EventFeed` over a dataset in time order; the
live runner (:mod:`kalshi_analytics.live`) over the recorder's commits as they come. Both run this code, so the
same rows in the same order give the same fills: paper results equal a backtest by construction, and where the
rows differ (a gap, downtime, data repaired later) the divergence report says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from kalshi_analytics.strategies.base import FIELDS, MarketView, OrderIntent, Position, Strategy, StrategyParams
from kalshi_analytics.trading.core import TradingCore, signal_record

NEVER = int(np.iinfo(np.int64).max)
_WIDTH = len(FIELDS)


class EventFeed:
    """One account's strategy over markets ``0 … m−1`` (the core's numbering), fed snapshot by snapshot."""

    def __init__(
        self,
        strategy: Strategy,
        params: StrategyParams,
        core: TradingCore,
        tickers: Sequence[str],
        capacities: Sequence[int] | None = None,
    ) -> None:
        self.strategy = strategy
        self.params = params
        self.core = core
        self.tickers = list(tickers)
        sizes = capacities if capacities is not None else [256] * len(self.tickers)
        self.buffers = [np.full((max(int(c), 1), _WIDTH), np.nan) for c in sizes]
        self.counts = [0] * len(self.tickers)
        self.positions: list[Position] = [Position() for _ in self.tickers]
        self.stale: set[int] = set()  # markets with an open feed gap (live only)
        self._next_due = NEVER
        self.refresh_settlements()

    def refresh_settlements(self) -> None:
        """Call after scheduling a settlement on the core (the live runner learns results as they are recorded)."""
        due = self.core.next_settlement_us()
        self._next_due = NEVER if due is None else due

    @property
    def next_due_us(self) -> int:
        """When the next scheduled settlement falls (:data:`NEVER` when none is)."""
        return self._next_due

    def settle_until(self, t_us: int) -> list[int]:
        """Settle every market due by ``t_us``; returns the markets settled now."""
        if t_us < self._next_due:
            return []
        core = self.core
        before = set(core.settled)
        core.advance(t_us)
        settled = sorted(core.settled - before)
        for s in settled:
            self.positions[s] = core.position(s)
        self.refresh_settlements()
        return settled

    def sync_positions(self) -> None:
        """Positions from the core again (after its portfolio was restored from stored fills)."""
        self.positions = [self.core.position(k) for k in range(len(self.tickers))]

    def append(self, k: int, values: np.ndarray) -> None:
        """Add a snapshot to market ``k``'s history without asking the strategy (rebuilding state, no trading)."""
        n = self.counts[k]
        buf = self.buffers[k]
        if n == len(buf):
            grown = np.full((2 * n, _WIDTH), np.nan)
            grown[:n] = buf
            self.buffers[k] = buf = grown
        buf[n] = values
        self.counts[k] = n + 1

    def step(self, k: int, row: int, t_us: int, values: np.ndarray, *, refuse: str | None = None) -> int:
        """Snapshot ``row`` (the core's quote handle) of market ``k`` at ``t_us`` with field ``values``: settle what
        is due, fill queued intents due now, ask the strategy, trade its intents — or, with ``refuse``, count them
        skipped for that reason instead (a stale market). Returns how many intents the strategy gave."""
        core = self.core
        if t_us >= self._next_due:
            self.settle_until(t_us)
        positions = self.positions
        if core.latency_us and refuse is None:
            fills = core.fills
            core.fill_due(k, row)
            if core.fills != fills:
                positions[k] = core.position(k)
        self.append(k, values)
        view = MarketView(self.tickers[k], self.buffers[k], self.counts[k], stale=k in self.stale)
        intents: Sequence[OrderIntent] = self.strategy.on_event(view, positions[k], self.params)
        if not intents:
            return 0
        if refuse is not None:
            core.skip(refuse, len(intents))
            return len(intents)
        latency = core.latency_us
        for it in intents:
            side = 1 if it.side == "yes" else 2
            limit = float(it.limit) if it.limit is not None else math.nan
            if latency:
                core.submit(k, t_us, side, it.action == "buy", it.size, limit, signal_record(it.reason))
            else:
                core.execute(k, row, side, it.action == "buy", it.size, limit, signal_record(it.reason))
        positions[k] = core.position(k)
        return len(intents)
