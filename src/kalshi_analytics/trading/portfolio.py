"""The account: cash, positions as FIFO lots with average prices, realised and unrealised P&L, the executions.

Every amount is ``Decimal``. Markets are numbered ``k`` (the feeder's index) and sides are 1 = YES, 2 = NO.
Each buy opens a lot; a sell closes lots first in, first out (a partial sell splits a lot, sharing its entry fee
pro rata to $0.0001, the remainder on the last piece); settlement closes what is left at the payout and marking
values it at a price without closing it. Each closed (or marked) piece of a lot is one :class:`Execution`.

Alongside, :attr:`Portfolio.events` logs every change of cash and holdings as floats — ``(ts_us, k, side,
Δcontracts, Δcash)`` — for the vectorised equity kernel (:mod:`.equity`), and :attr:`Portfolio.trades` every fill
exactly (:data:`Trade`): what paper trading stores and what its divergence report compares with a backtest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from kalshi_analytics.strategies.base import Position

SIDES = ("", "yes", "no")
_Q4 = Decimal("0.0001")
_ZERO = Decimal(0)


_TIMES: dict[int, datetime] = {}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOATS: dict[Decimal, float] = {}


def as_float(x: Decimal) -> float:
    """``float(x)``, remembered (fill sizes repeat; equal Decimals have the same float, whatever their exponent)."""
    f = _FLOATS.get(x)
    if f is None:
        if len(_FLOATS) >= 1 << 16:
            _FLOATS.clear()
        f = _FLOATS[x] = float(x)
    return f


def utc(ts_us: int) -> datetime:
    """Unix microseconds as an exact aware datetime (remembered: fills share their snapshots' times)."""
    t = _TIMES.get(ts_us)
    if t is None:
        if len(_TIMES) >= 1 << 16:
            _TIMES.clear()
        t = _TIMES[ts_us] = _EPOCH + timedelta(microseconds=ts_us)  # exact; half the cost of fromtimestamp
    return t


@dataclass(slots=True)
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


@dataclass(slots=True)
class Lot:
    size: Decimal
    price: Decimal
    fee: Decimal
    ts_us: int
    source: str
    signal: dict[str, Any]


#: One fill: (market k, side, buy?, price, contracts, fee, ts_us, source, signal record, cash after it).
Trade = tuple[int, int, bool, Decimal, Decimal, Decimal, int, str, Any, Decimal]


class Portfolio:
    """Cash, lots and the ledger of one account."""

    def __init__(self, tickers: Sequence[str], initial_capital: Decimal) -> None:
        self.tickers = tickers
        self.initial_capital = initial_capital
        self.cash = initial_capital
        self.lots: dict[tuple[int, int], deque[Lot]] = {}
        self.held: dict[tuple[int, int], Decimal] = {}
        self.cost: dict[tuple[int, int], Decimal] = {}  # Σ size × price of the open lots
        self.realised = _ZERO  # closed by a sell or a settlement, fees included
        self.unrealised = _ZERO  # of the marked positions, fees included
        self.mark_value = _ZERO  # what the marked positions are worth at their marks
        self.fees = _ZERO
        self.executions: list[Execution] = []
        self.events: list[tuple[int, int, int, float, float]] = []
        self.trades: list[Trade] = []

    @property
    def equity(self) -> Decimal:
        """Cash plus the marked positions (exact after :meth:`mark`; cash alone before)."""
        return self.cash + self.mark_value

    def position(self, k: int) -> Position:
        y = self.held.get((k, 1), _ZERO)
        n = self.held.get((k, 2), _ZERO)
        return Position(
            y,
            n,
            self.cost[(k, 1)] / y if y > 0 else None,
            self.cost[(k, 2)] / n if n > 0 else None,
        )

    def open_keys(self) -> list[tuple[int, int]]:
        return sorted(key for key, held in self.held.items() if held > 0)

    def buy(  # noqa: PLR0917 - the hot path, positional
        self, k: int, side: int, price: Decimal, size: Decimal, fee: Decimal, ts_us: int, source: str, signal: Any
    ) -> None:
        key = (k, side)
        amount = size * price
        paid = amount + fee
        self.cash -= paid
        self.fees += fee
        lots = self.lots.get(key)
        if lots is None:
            lots = self.lots[key] = deque()
        lots.append(Lot(size, price, fee, ts_us, source, signal))
        held = self.held
        held[key] = held.get(key, _ZERO) + size
        self.cost[key] = self.cost.get(key, _ZERO) + amount
        self.events.append((ts_us, k, side, as_float(size), -float(paid)))
        self.trades.append((k, side, True, price, size, fee, ts_us, source, signal, self.cash))

    def sell(  # noqa: PLR0917 - the hot path, positional
        self, k: int, side: int, price: Decimal, size: Decimal, fee: Decimal, ts_us: int, source: str, signal: Any
    ) -> None:
        key = (k, side)
        amount = size * price
        self.cash += amount - fee
        self.fees += fee
        self.held[key] -= size
        self.events.append((ts_us, k, side, -as_float(size), float(amount - fee)))
        self.trades.append((k, side, False, price, size, fee, ts_us, source, signal, self.cash))
        self._close(key, size, price, fee, ts_us, source, "signal", signal)

    def settle(self, k: int, side: int, payout: Decimal, ts_us: int) -> None:
        """Close everything held on ``side`` of market ``k`` at ``payout`` dollars per contract (no fee)."""
        key = (k, side)
        held = self.held.get(key, _ZERO)
        if held <= 0:
            return
        self.cash += held * payout
        self.held[key] = _ZERO
        self.events.append((ts_us, k, side, -float(held), float(held * payout)))
        self._close(key, held, payout, _ZERO, ts_us, None, "settlement", None)

    def mark(self, k: int, side: int, price: Decimal, ts_us: int, source: str | None) -> None:
        """Value what is held on ``side`` of market ``k`` at ``price`` (unrealised; listed as ``marked``)."""
        key = (k, side)
        held = self.held.get(key, _ZERO)
        if held <= 0:
            return
        self.mark_value += held * price
        before = self.realised
        self._close(key, held, price, _ZERO, ts_us, source, "marked", None)
        self.unrealised += self.realised - before  # _close books realised; a mark is not
        self.realised = before
        self.held[key] = _ZERO

    def _close(  # noqa: PLR0917 - internal
        self,
        key: tuple[int, int],
        size: Decimal,
        price: Decimal,
        fee: Decimal,
        ts_us: int,
        source: str | None,
        reason: str,
        exit_signal: dict[str, Any] | None,
    ) -> None:
        """Close ``size`` contracts FIFO at ``price``; the exit fee is shared pro rata (to 0.0001, remainder last)."""
        lots = self.lots[key]
        remaining, fee_left = size, fee
        ticker = self.tickers[key[0]]
        side_name = SIDES[key[1]]
        exit_ts = utc(ts_us)
        while remaining > 0:
            lot = lots[0]
            take = lot.size if lot.size <= remaining else remaining  # not min(): slower on Decimals
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
            self.cost[key] -= take * lot.price
            fees = entry_fee + exit_fee
            pnl = take * (price - lot.price) - fees
            self.realised += pnl
            entry_ts = utc(lot.ts_us)
            self.executions.append(
                Execution(  # positional (the fields' order): keywords cost more, once per closed piece
                    ticker,
                    side_name,
                    take,
                    entry_ts,
                    lot.price,
                    entry_ts,
                    lot.source,
                    fees,
                    exit_ts,
                    price,
                    exit_ts if source is not None else None,
                    source,
                    reason,
                    pnl.quantize(_Q4),
                    {**lot.signal, "exit": exit_signal} if exit_signal else lot.signal,
                )
            )
        if not lots:
            self.cost[key] = _ZERO  # no residue of the Decimal arithmetic once flat
