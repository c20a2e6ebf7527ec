"""What a run of the trading core produced: the ledger, the money, the sampled curve, the flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from kalshi_analytics.trading.equity import EquityCurve, FloatArray
from kalshi_analytics.trading.portfolio import Execution, Trade


@dataclass
class TradingResult:
    executions: list[Execution]
    fills: int
    fees_paid: Decimal
    initial_capital: Decimal
    final_cash: Decimal  # after fills and settlements; marked positions are not cash
    final_equity: Decimal  # final_cash + marked positions at their marks
    total_pnl: Decimal  # final_equity − initial_capital = realised + unrealised
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    unresolved_markets: list[str]
    curve: EquityCurve
    skipped: dict[str, int]
    size_unknown_fills: int = 0
    trade_priced_fills: int = 0  # on snapshots without a recorded quote, at their trade price
    fill_model: dict[str, Any] = field(default_factory=dict)
    fee_model: dict[str, Any] = field(default_factory=dict)
    settlement_time_assumed: list[str] = field(default_factory=list)  # settled at the close: no time recorded
    trades: list[Trade] = field(default_factory=list)  # every fill, exactly (the portfolio's ledger)

    @property
    def equity_ts(self) -> FloatArray:
        """Sample times, Unix seconds."""
        return self.curve.ts

    @property
    def equity(self) -> FloatArray:
        return self.curve.equity

    @property
    def flags(self) -> list[str]:
        """What a reader must know before trusting the numbers."""
        out = []
        if self.size_unknown_fills:
            out.append("size_unknown")  # some fills were sized by the fill model's cap, not a recorded size
        if self.trade_priced_fills:
            out.append("price_from_trades")  # some fills paid a trade price, no quote being recorded: no spread
        if self.unresolved_markets:
            out.append("unresolved_marked")  # some positions are valued at a mark, not a settlement
        if self.settlement_time_assumed:
            out.append("settlement_time_assumed")  # some results were taken as known at the market's close
        return out

    def curve_points(self) -> tuple[FloatArray, FloatArray]:
        """The curve without the interior points of flat stretches (the same step function, fewer points)."""
        eq = self.curve.equity
        if len(eq) <= 2:
            return self.curve.ts, eq
        keep = np.r_[True, (eq[1:-1] != eq[:-2]) | (eq[1:-1] != eq[2:]), True]
        return self.curve.ts[keep], eq[keep]
