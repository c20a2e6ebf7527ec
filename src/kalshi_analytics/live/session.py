"""One running paper session in the runner's memory: the backtest's own feed and trading core over live rows.

A :class:`SessionRun` is the per-event path of a backtest (:class:`~kalshi_analytics.backtests.feed.EventFeed`
and the trading core) fed one committed snapshot at a time instead of a dataset: the same views, intents, fills,
fees and settlements, so the same rows give the same fills. What differs is only what live data can do to it,
each of which it refuses to trade on and records as a session event:

- a snapshot older than one this market already applied (data repaired or recorded after the fact): ``late_data``,
  not shown to the strategy (its view must stay in time order);
- a market with an open feed gap is ``stale``: the strategy is told (``view.stale``) and its intents skip;
- a snapshot from before the runner (re)started (``resumed_us``): ``downtime``, shown to the strategy but not traded.
"""

from __future__ import annotations

import bisect
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from kalshi_analytics.backtests.data import Dataset, MarketInfo
from kalshi_analytics.backtests.engine import EngineConfig, settlement_time_us, yes_payout
from kalshi_analytics.backtests.feed import EventFeed
from kalshi_analytics.backtests.trade_quotes import quote_trades
from kalshi_analytics.strategies.base import FIELDS, Strategy, StrategyParams
from kalshi_analytics.trading.core import MarketSpec, TradingCore, price_of
from kalshi_analytics.trading.portfolio import SIDES, Trade

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_ZERO = Decimal(0)
_Q4 = Decimal("0.0001")
_YB, _NB = FIELDS.index("yes_bid"), FIELDS.index("no_bid")


def to_us(t: datetime) -> int:
    return (t - _EPOCH) // _US


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class RowQuotes:
    """The trading core's :class:`~kalshi_analytics.trading.core.Quotes` over the snapshots being applied now:
    ``row`` indexes the arrays :meth:`load` was last given (a chunk of the journal)."""

    __slots__ = ("by_trade", "na", "nb", "src", "ts", "ya", "yas", "yb", "ybs")

    def __init__(self) -> None:
        self.load({c: np.zeros(0) for c in ("ts_us", *FIELDS, "source")}, None)

    def load(self, columns: dict[str, Any], by_trade: np.ndarray | None) -> None:
        self.ts, self.src = columns["ts_us"], columns["source"]
        self.yb, self.ya, self.nb, self.na = (
            columns["yes_bid"],
            columns["yes_ask"],
            columns["no_bid"],
            columns["no_ask"],
        )
        self.ybs, self.yas = columns["yes_bid_size"], columns["yes_ask_size"]
        self.by_trade = by_trade

    def ts_us(self, row: int) -> int:
        return int(self.ts[row])

    def source(self, row: int) -> str:
        return str(self.src[row])

    def touch(self, row: int, side: int, buy: bool) -> tuple[float, float]:
        # As the backtest's DatasetQuotes: a NO ask is a YES bid (at its size), a YES ask a NO bid.
        if buy:
            return (self.ya.item(row), self.yas.item(row)) if side == 1 else (self.na.item(row), self.ybs.item(row))
        return (self.yb.item(row), self.ybs.item(row)) if side == 1 else (self.nb.item(row), self.yas.item(row))

    def depth(self, k: int, row: int, side: int, buy: bool) -> Sequence[tuple[float, float]]:
        return ()  # sessions fill at the touch (``walk_book`` off)

    def priced_by_trade(self, row: int) -> bool:
        return self.by_trade is not None and bool(self.by_trade[row])


def quoted(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """``columns`` with their trade-only snapshots quoted at the trade, by the backtest's own rule."""
    n = len(columns["ts_us"])
    ds = Dataset(
        [],
        np.array([0, n], np.int64),
        columns["ts_us"],
        np.zeros(n, np.int8),
        {c: columns[c] for c in FIELDS if c != "close_time"},
        _EPOCH,
        _EPOCH,
    )
    out, mask = quote_trades(ds)
    if mask is None:
        return columns, None
    return {**columns, **out.columns}, mask


@dataclass
class Pending:
    """What a session changed since its last commit."""

    trades_from: int = 0  # index into the portfolio's trades: the fills not yet stored
    causes: list[tuple[int, int, int]] = field(default_factory=list)  # per new fill: (event id, seq, k)
    touched: set[int] = field(default_factory=set)  # markets whose position or mark moved
    equity: list[tuple[datetime, Decimal, Decimal]] = field(default_factory=list)
    events: list[tuple[datetime, str, str | None, datetime | None, dict[str, Any]]] = field(default_factory=list)
    cursor: int | None = None
    processed_us: int | None = None  # exchange time of the newest snapshot applied since the last commit

    def event(
        self,
        at: datetime,
        kind: str,
        ticker: str | None = None,
        until: datetime | None = None,
        **details: Any,
    ) -> None:
        self.events.append((at, kind, ticker, until, details))


class SessionRun:
    """A running session: its feed, core, marks and the changes waiting to be committed."""

    def __init__(
        self,
        row: Any,
        strategy: Strategy,
        params: StrategyParams,
        cfg: EngineConfig,
        markets: Sequence[MarketInfo],
    ) -> None:
        self.id: uuid.UUID = row["id"]
        self.strategy = strategy
        self.cfg = cfg
        self.tickers: list[str] = list(row["tickers"])
        self.index = {t: k for k, t in enumerate(self.tickers)}
        self.infos: list[MarketInfo | None] = [None] * len(self.tickers)
        self._close_keys: dict[int, tuple[Any, list[float]]] = {}  # k → (its close_times, their known-at times)
        for info in markets:
            if info.ticker in self.index:
                self.infos[self.index[info.ticker]] = info
        self.quotes = RowQuotes()
        specs = [
            MarketSpec(t, i.fees) if i is not None else MarketSpec(t)
            for t, i in zip(self.tickers, self.infos, strict=True)
        ]
        self.core = TradingCore(specs, self.quotes, cfg)
        self.feed = EventFeed(strategy, params, self.core, self.tickers)
        self.started_us = to_us(row["started_at"])
        self.resumed_us = self.started_us
        self.cursor: int = row["last_event_id"]
        self.trade_quotes = bool(cfg.fill_model.trade_quotes)
        self.last_key: list[tuple[int, str] | None] = [None] * len(self.tickers)
        self.last_bid: dict[tuple[int, int], float] = {}
        self.scheduled: set[int] = set()
        self.stale_since: dict[str, datetime] = {}  # ticker ("" = every market) → open gap's start
        self.processed_us: int | None = None
        self.interval_us = max(round(cfg.equity_interval_seconds * 1_000_000), 1)
        self.next_equity_us = self.started_us + self.interval_us
        self.pending = Pending()
        self.late = 0
        self.fills_total = int(row["num_fills"])
        self.failure: str | None = None  # why it stopped: an error while applying a snapshot

    def schedule_known(self) -> list[int]:
        """Schedule the settlement of every market whose result is known (after :meth:`rebuild`, which tells
        the last snapshot a result without a time falls back to)."""
        return [k for k, info in enumerate(self.infos) if info is not None and self.set_info(info)]

    # ------------------------------------------------------------------------------------------ market facts
    def set_info(self, info: MarketInfo) -> bool:
        """Take a market's newest facts; True when its result became known now (settlement scheduled)."""
        k = self.index.get(info.ticker)
        if k is None:
            return False
        self.infos[k] = info
        value = yes_payout(info)
        if value is None or k in self.scheduled:
            return False
        last = self.last_key[k]
        at = settlement_time_us(info, last[0] if last is not None else self.started_us)
        self.core.schedule_settlement(k, at, value)
        self.scheduled.add(k)
        self.feed.refresh_settlements()
        return True

    def close_at(self, k: int, ts_s: float) -> float:
        """The close time known at ``ts_s`` (the backtest's :meth:`MarketInfo.close_time_column`, one value)."""
        info = self.infos[k]
        if info is None:
            return math.nan
        if info.close_times is None:
            return math.nan if info.close_time is None else info.close_time.timestamp()
        if not info.close_times:
            return math.nan
        cached = self._close_keys.get(k)
        if cached is None or cached[0] is not info.close_times:  # the times it was known at, once per list
            cached = self._close_keys[k] = (info.close_times, [kn for kn, _ in info.close_times])
        i = bisect.bisect_right(cached[1], ts_s) - 1
        return info.close_times[i][1] if i >= 0 else math.nan

    # -------------------------------------------------------------------------------------------- restoring
    def restore(self, fills: Sequence[Any], skipped: dict[str, int]) -> None:
        """The account as the stored fills left it (in their order), settlements replayed as data time passes."""
        pf = self.core.portfolio
        for f in fills:
            k = self.index[f["ticker"]]
            side = 1 if f["side"] == "yes" else 2
            ts = to_us(f["snapshot_ts"])
            if ts >= self.feed.next_due_us:  # settlements in between, as they happened
                self.feed.settle_until(ts)
            if f["action"] == "buy":
                pf.buy(k, side, f["price"], f["count"], f["fee"], ts, f["snapshot_source"], f["signal"] or {})
            else:
                pf.sell(k, side, f["price"], f["count"], f["fee"], ts, f["snapshot_source"], f["signal"] or {})
        self.core.restored(len(fills), skipped)
        self.feed.sync_positions()
        self.pending.trades_from = len(pf.trades)

    def rebuild(self, ds: Dataset, resumed_us: int) -> int:
        """The strategy's views from ``ds`` (every snapshot of the session so far), without trading; from now on
        only snapshots at or after ``resumed_us`` trade. Returns the snapshots applied."""
        ds2, _ = quote_trades(ds) if self.trade_quotes else (ds, None)
        table = np.column_stack([ds2.field(f) for f in FIELDS])
        for j, info in enumerate(ds2.markets):
            k = self.index.get(info.ticker)
            if k is None:
                continue
            a, b = int(ds2.offsets[j]), int(ds2.offsets[j + 1])
            for g in range(a, b):
                self.feed.append(k, table[g])
            if b > a:
                last = b - 1
                self.last_key[k] = (int(ds2.ts_us[last]), ("poll", "websocket", "backfill")[int(ds2.source[last])])
                for side, col in ((1, _YB), (2, _NB)):
                    finite = table[a:b, col][np.isfinite(table[a:b, col])]
                    if len(finite):
                        self.last_bid[(k, side)] = float(finite[-1])
        self.resumed_us = resumed_us
        self.processed_us = int(ds2.ts_us.max()) if ds2.rows else self.processed_us
        if self.processed_us is not None:
            self.next_equity_us = max(self.next_equity_us, self._next_boundary(max(self.processed_us, resumed_us)))
        return ds2.rows

    def _next_boundary(self, us: int) -> int:
        n = (us - self.started_us) // self.interval_us + 1
        return self.started_us + n * self.interval_us

    # ------------------------------------------------------------------------------------------ applying rows
    def apply(  # noqa: PLR0917 - one snapshot's fields, positional like the feed's step
        self, event_id: int, k: int, row: int, ts_us: int, source: str, values: np.ndarray
    ) -> None:
        """One committed snapshot of market ``k`` (``row`` of the loaded quotes)."""
        if ts_us < self.started_us:
            return
        key = (ts_us, source)
        last = self.last_key[k]
        if last is not None and key <= last:
            if key != last:  # an identical key is the same row seen twice (rebuild and journal overlap)
                self.late += 1
                self.pending.event(
                    from_us(ts_us), "late_data", self.tickers[k], None, source=source, note=details_note(last)
                )
            return
        self._sample_equity(ts_us)
        self.last_key[k] = key
        before = len(self.core.portfolio.trades)
        settled = self.feed.settle_until(ts_us)
        if ts_us < self.resumed_us:
            self.feed.append(k, values)
        else:
            refuse = "stale" if (k in self.feed.stale) else None
            self.feed.step(k, row, ts_us, values, refuse=refuse)
        for s in settled:
            self._settled(s)
        for side, col in ((1, _YB), (2, _NB)):
            v = float(values[col])
            if math.isfinite(v):
                self.last_bid[(k, side)] = v
        self.pending.touched.add(k)
        trades = self.core.portfolio.trades
        for seq, t in enumerate(trades[before:]):
            self.pending.causes.append((event_id, seq, t[0]))
        self.processed_us = ts_us if self.processed_us is None else max(self.processed_us, ts_us)
        self.pending.processed_us = (
            ts_us if self.pending.processed_us is None else max(self.pending.processed_us, ts_us)
        )

    def settle_due(self, now_us: int) -> None:
        """Settle results whose time has passed by the wall clock (a settled market sends no more snapshots)."""
        for s in self.feed.settle_until(now_us):
            self._settled(s)

    def _settled(self, k: int) -> None:
        info = self.infos[k]
        last = self.last_key[k]
        value = yes_payout(info) if info is not None else None
        at = settlement_time_us(info, last[0] if last is not None else self.started_us) if info is not None else 0
        self.pending.touched.add(k)
        self.pending.event(
            from_us(at), "settled", self.tickers[k], None, yes_payout=str(value), cash=str(self.core.cash)
        )

    def set_stale(self, open_gaps: dict[str, datetime], now: datetime) -> None:
        """The open feed gaps of the session's markets (``""``: a whole subscription, every market)."""
        for ticker, since in open_gaps.items():
            if ticker not in self.stale_since and (ticker == "" or ticker in self.index):
                self.pending.event(since, "stale", ticker or None, None, note="feed gap open: no order fills")
        for ticker, since in self.stale_since.items():
            if ticker not in open_gaps:
                self.pending.event(since, "repaired", ticker or None, now, note="feed gap closed: trading again")
        self.stale_since = {t: s for t, s in open_gaps.items() if t == "" or t in self.index}
        if "" in self.stale_since:
            self.feed.stale = set(range(len(self.tickers)))
        else:
            self.feed.stale = {self.index[t] for t in self.stale_since}

    # ------------------------------------------------------------------------------------------- the account
    def mark(self, k: int, side: int) -> Decimal | None:
        bid = self.last_bid.get((k, side))
        return None if bid is None else price_of(bid)

    def equity(self) -> Decimal:
        pf = self.core.portfolio
        value = pf.cash
        for (k, side), held in pf.held.items():
            if held > 0:
                mark = self.mark(k, side)
                value += held * (mark if mark is not None else _ZERO)
        return value.quantize(_Q4)

    def _sample_equity(self, ts_us: int) -> None:
        if ts_us < self.next_equity_us:
            return
        # Every boundary passed gets the equity as it stood before this snapshot (a flat stretch, sampled once).
        at = self.next_equity_us
        self.pending.equity.append((from_us(at), self.equity(), self.core.cash.quantize(_Q4)))
        self.next_equity_us = self._next_boundary(max(at, ts_us - 1))

    def new_trades(self) -> list[Trade]:
        return self.core.portfolio.trades[self.pending.trades_from :]

    def position_rows(self) -> list[tuple[str, str, Decimal, Decimal | None, Decimal | None]]:
        """(ticker, side, contracts, average price, mark) of the touched markets."""
        pf = self.core.portfolio
        out = []
        for k in sorted(self.pending.touched):
            for side in (1, 2):
                held = pf.held.get((k, side))
                if held is None:
                    continue
                cost = pf.cost.get((k, side), _ZERO)
                avg = (cost / held).quantize(Decimal("0.00000001")) if held > 0 else None
                out.append((self.tickers[k], SIDES[side], held, avg, self.mark(k, side)))
        return out

    def committed(self, cursor: int) -> None:
        self.cursor = cursor
        self.fills_total += len(self.new_trades())
        self.pending = Pending(trades_from=len(self.core.portfolio.trades))


def details_note(last: tuple[int, str]) -> str:
    return f"older than this market's last applied snapshot ({from_us(last[0]).isoformat()} {last[1]})"
