"""The recorder's table writes: one batch of rows into every table it touches, in ONE transaction.

Markets are upserted (a field the row does not know never clears a stored one), snapshots go through the COPY
path of :mod:`~kalshi_analytics.recorder.bulk` and fold into 1-minute candles, trades and order books are
staged and inserted idempotently, gap rows opened and repaired in batch order. Every row that is new (and every
change of a market's status) becomes an event of the live stream's journal (:mod:`kalshi_analytics.events`), in
batch order, appended last; the commit notification (:mod:`kalshi_analytics.notifications`) is sent inside the
transaction, so it fires exactly on commit.
Delivery (queueing, retries, bisecting) is the :class:`~kalshi_analytics.recorder.sink.Sink`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import events, notifications
from kalshi_analytics.logs import get_logger
from kalshi_analytics.markets.candle_blocks import BlockKeeper, Plan
from kalshi_analytics.markets.events import (
    gap_opened_event,
    gap_repaired_event,
    market_status_event,
    orderbook_event,
    snapshot_event,
    trade_event,
)
from kalshi_analytics.recorder.bulk import write_snapshots_returning_new
from kalshi_analytics.recorder.candles import UPSERT_CANDLES_SQL, aggregate_candles, candle_columns
from kalshi_analytics.recorder.rows import (
    MARKET_COLUMNS,
    TRADE_COLUMNS,
    GapOpened,
    GapRepaired,
    MarketRow,
    OrderbookRow,
    SinkItem,
    SnapshotRow,
    TradeRow,
)

log = get_logger(__name__)

TABLE_OF: dict[type, str] = {
    SnapshotRow: "market_snapshots",
    TradeRow: "trades",
    OrderbookRow: "orderbook_snapshots",
    MarketRow: "markets",
    GapOpened: "feed_gaps",
    GapRepaired: "feed_gaps",
}

# Fence: called inside each batch's transaction with the asyncpg connection; raises to refuse the write
# (e.g. :meth:`LeaderElection.fence`, so a deposed leader never commits).
Fence = Callable[[Any], Awaitable[None]]


@dataclass
class Written:
    """What one batch did to the tables."""

    new: dict[str, int] = field(default_factory=dict)  # new rows by table
    duplicates: dict[str, int] = field(default_factory=dict)
    candles: int = 0
    markets_unknown: int = 0  # partial market rows for tickers not stored yet
    repairs_unmatched: int = 0  # GapRepaired whose key was never stored
    notifications: int = 0
    events: int = 0  # appended to the stream's journal
    last_event_id: int | None = None
    lags: list[tuple[str, datetime]] = field(default_factory=list)  # (kind, exchange ts) of new snapshots/trades


def _bump(d: dict[str, int], key: str, n: int) -> None:
    if n:
        d[key] = d.get(key, 0) + n


async def write_batch(
    engine: AsyncEngine,
    items: Sequence[SinkItem],
    *,
    max_spread: Decimal,
    timeout_seconds: float,
    fence: Fence | None = None,
    channel: str = notifications.CHANNEL,
    prune_journal_seconds: float | None = None,
    blocks: BlockKeeper | None = None,
) -> Written:
    """Write ``items`` in one transaction, journal an event per new row (and per market status change) and
    notify ``channel`` of the tickers whose rows are new. With ``prune_journal_seconds``, journal events older
    than that go first. ``blocks`` keeps the stored candle blocks of closed hours true to the candles
    (:mod:`~kalshi_analytics.markets.candle_blocks`).

    Raises whatever the database raises (the caller decides between retrying and isolating bad rows), and
    ``TypeError`` for an item that is not a row of these tables.
    """
    by_type: dict[type, list[Any]] = {t: [] for t in TABLE_OF}
    for it in items:
        bucket = by_type.get(type(it))
        if bucket is None:
            raise TypeError(f"the sink does not write {type(it).__name__}")
        bucket.append(it)
    snaps: list[SnapshotRow] = by_type[SnapshotRow]
    trades: list[TradeRow] = by_type[TradeRow]
    books: list[OrderbookRow] = by_type[OrderbookRow]
    markets: list[MarketRow] = by_type[MarketRow]
    # Openings and repairs keep their batch order: a repair may follow its opening in the same batch.
    gaps = [(i, it) for i, it in enumerate(items) if type(it) is GapOpened or type(it) is GapRepaired]

    o = Written()
    touched: set[str] = set()
    new_rows = NewRows()
    plan: Plan | None = None
    async with engine.connect() as conn, conn.begin():
        # Through SQLAlchemy first: this opens the transaction the raw asyncpg calls below join.
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_seconds * 1000)}")
        pg: Any = (await conn.get_raw_connection()).driver_connection
        if fence is not None:
            await fence(pg)

        if markets:
            await _write_markets(pg, markets, o, touched, new_rows)
        if snaps:
            result, new_snaps = await write_snapshots_returning_new(conn, snaps)
            _bump(o.new, "market_snapshots", result.new)
            _bump(o.duplicates, "market_snapshots", result.duplicates)
            if new_snaps:
                candles = aggregate_candles(new_snaps, max_spread)
                await pg.execute(UPSERT_CANDLES_SQL, *candle_columns(candles))
                o.candles = len(candles)
                if blocks is not None:
                    plan = blocks.plan((c.ticker, c.minute) for c in candles)
                    await blocks.apply(pg, plan)
                touched.update(r.ticker for r in new_snaps)
                new_rows.snapshots.update((r.ticker, r.ts, r.source) for r in new_snaps)
                # The live feed's lag: a row a poll or a repair wrote late is the repair's time, not the feed's.
                o.lags.extend(("snapshot", r.ts) for r in new_snaps if r.source == "websocket")
        if trades:
            await _write_trades(pg, trades, o, touched, new_rows)
        if books:
            await _write_books(pg, books, o, touched, new_rows)
        if gaps:
            await _write_gaps(pg, gaps, o, new_rows)
        if prune_journal_seconds is not None:
            await events.prune(pg, prune_journal_seconds)
        journal = new_rows.events(items)
        # Last: the journal's head row stays locked until this transaction ends (ids in commit order).
        o.last_event_id = await events.append(pg, journal)
        o.events = len(journal)
        o.notifications += await events.notify(
            pg,
            o.last_event_id,
            tickers=sorted(touched),
            since=series_since(snaps, trades, books),
            channel=channel,
        )
    if blocks is not None and plan is not None:
        blocks.committed(plan)
    return o


@dataclass
class NewRows:
    """What in a batch was new, so its events can be made in batch order once everything is written."""

    snapshots: set[tuple[str, datetime, str]] = field(default_factory=set)
    trades: set[str] = field(default_factory=set)
    books: set[tuple[str, datetime, str]] = field(default_factory=set)
    market_status: dict[str, events.NewEvent] = field(default_factory=dict)  # sent where the ticker's last row is
    gaps: dict[int, events.NewEvent] = field(default_factory=dict)  # by the item's index

    def events(self, items: Sequence[SinkItem]) -> list[events.NewEvent]:
        """One event per new row, in the order the rows were put (a row repeated in the batch counts once)."""
        last_market_row = {it.ticker: i for i, it in enumerate(items) if type(it) is MarketRow}
        out: list[events.NewEvent] = []
        for i, it in enumerate(items):
            if type(it) is SnapshotRow:
                key = (it.ticker, it.ts, it.source)
                if key in self.snapshots:
                    self.snapshots.discard(key)
                    out.append(snapshot_event(it))
            elif type(it) is TradeRow:
                if it.trade_id in self.trades:
                    self.trades.discard(it.trade_id)
                    out.append(trade_event(it))
            elif type(it) is OrderbookRow:
                key = (it.ticker, it.ts, it.source)
                if key in self.books:
                    self.books.discard(key)
                    out.append(orderbook_event(it))
            elif type(it) is MarketRow:
                if last_market_row[it.ticker] == i and it.ticker in self.market_status:
                    out.append(self.market_status[it.ticker])
            elif i in self.gaps:
                out.append(self.gaps[i])
        return out


def series_since(*batches: Sequence[Any]) -> datetime | None:
    """The minute of the earliest exchange time among rows with a ``ts`` (None when there are none)."""
    times = [r.ts for rows in batches for r in rows]
    return min(times).replace(second=0, microsecond=0) if times else None


# -------------------------------------------------------------------------------------------- SQL and writes
def _unnest(types: Sequence[str]) -> str:
    return ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))


_MARKET_TYPES = {
    "open_time": "timestamptz",
    "close_time": "timestamptz",
    "expected_expiration_time": "timestamptz",
    "settled_at": "timestamptz",
    "settlement_value": "numeric",
    "notional_value": "numeric",
    "volume": "numeric",
    "open_interest": "numeric",
    "price_ranges": "jsonb",
    "raw": "jsonb",
}
_MARKET_COL_TYPES = [_MARKET_TYPES.get(c, "text") for c in MARKET_COLUMNS]
_MARKET_COLS = ", ".join(MARKET_COLUMNS)
_MARKET_KEEP = ", ".join(f"{c} = COALESCE(EXCLUDED.{c}, m.{c})" for c in MARKET_COLUMNS[1:])
UPSERT_MARKETS_SQL = (
    f"INSERT INTO markets AS m ({_MARKET_COLS}) SELECT * FROM unnest({_unnest(_MARKET_COL_TYPES)}) "
    f"ON CONFLICT (ticker) DO UPDATE SET {_MARKET_KEEP}, updated_at = now()"
)
UPDATE_MARKETS_SQL = (
    f"UPDATE markets AS m SET {', '.join(f'{c} = COALESCE(u.{c}, m.{c})' for c in MARKET_COLUMNS[1:])}, "
    f"updated_at = now() FROM unnest({_unnest(_MARKET_COL_TYPES)}) AS u({_MARKET_COLS}) "
    "WHERE m.ticker = u.ticker RETURNING m.ticker"
)

_TRADE_COLS = TRADE_COLUMNS
_TRADE_STAGING = "_ka_trade_staging"
_BOOK_STAGING = "_ka_book_staging"
_BOOK_COLS = ("ticker", "ts", "source", "received_at", "sequence", "yes_prices", "yes_sizes", "no_prices", "no_sizes")

INSERT_GAP_SQL = (
    "INSERT INTO feed_gaps (key, detected_at, channel, sid, market_ticker, cause, seq_expected, seq_received, "
    "gap_start, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb) ON CONFLICT (key) DO NOTHING"
)
REPAIR_GAP_SQL = (
    "UPDATE feed_gaps SET gap_end = $2, repaired_at = $3, repair_method = $4, unrepairable_reason = $6, "
    "details = CASE WHEN $5::jsonb IS NULL THEN details ELSE COALESCE(details, '{}'::jsonb) || $5::jsonb END "
    "WHERE key = $1 RETURNING market_ticker"
)


def _json(v: Any) -> str | None:
    return None if v is None else json.dumps(v, separators=(",", ":"), default=str)


def _merge_markets(rows: Sequence[MarketRow]) -> list[MarketRow]:
    """One row per ticker, in ticker order: later non-null fields win (the database's COALESCE rule, applied
    in batch order, so one INSERT … ON CONFLICT never touches a row twice)."""
    merged: dict[str, MarketRow] = {}
    for r in rows:
        prev = merged.get(r.ticker)
        if prev is None:
            merged[r.ticker] = r
        else:
            merged[r.ticker] = MarketRow._make(
                new if new is not None else old for old, new in zip(prev, r, strict=True)
            )
    return [merged[t] for t in sorted(merged)]


def _market_args(rows: Sequence[MarketRow]) -> list[list[Any]]:
    cols: list[list[Any]] = [[] for _ in MARKET_COLUMNS]
    for r in rows:
        for i, v in enumerate(r):
            cols[i].append(_json(v) if MARKET_COLUMNS[i] in ("raw", "price_ranges") else v)
    return cols


_MARKET_BEFORE_SQL = (
    "SELECT ticker, status, result, settlement_value, settled_at, close_time FROM markets "
    "WHERE ticker = ANY($1::text[])"
)


async def _write_markets(pg: Any, rows: Sequence[MarketRow], o: Written, touched: set[str], new_rows: NewRows) -> None:
    merged = _merge_markets(rows)
    before = {r["ticker"]: r for r in await pg.fetch(_MARKET_BEFORE_SQL, [r.ticker for r in merged])}
    complete = [r for r in merged if r.is_complete]
    partial = [r for r in merged if not r.is_complete]
    if complete:
        await pg.execute(UPSERT_MARKETS_SQL, *_market_args(complete))
    updated: set[str] = set()
    if partial:
        updated = {r[0] for r in await pg.fetch(UPDATE_MARKETS_SQL, *_market_args(partial))}
        unknown = [r.ticker for r in partial if r.ticker not in updated]
        if unknown:
            o.markets_unknown += len(unknown)
            log.info("sink_market_update_for_unknown_ticker", tickers=unknown[:20], count=len(unknown))
    _bump(o.new, "markets", len(complete) + len(updated))
    touched.update(r.ticker for r in complete)
    touched.update(updated)
    await _record_close_times(pg, [r for r in merged if r.is_complete or r.ticker in updated], before, o)
    for r in merged:
        if not r.is_complete and r.ticker not in updated:
            continue
        old = before.get(r.ticker)
        # The upsert's rule: a field the row does not know keeps its stored value.
        status = r.status if r.status is not None else (old["status"] if old is not None else None)
        result = r.result if r.result is not None else (old["result"] if old is not None else None)
        if status is None or (old is not None and (status, result) == (old["status"], old["result"])):
            continue

        def kept(name: str, row: MarketRow = r, stored: Any = old) -> Any:
            value = getattr(row, name)
            return value if value is not None or stored is None else stored[name]

        new_rows.market_status[r.ticker] = market_status_event(
            ticker=r.ticker,
            status=status,
            previous_status=old["status"] if old is not None else None,
            result=result,
            settlement_value=kept("settlement_value"),
            settled_at=kept("settled_at"),
            close_time=kept("close_time"),
        )


# ``now()`` is when this transaction began: after every row in it was received, so never earlier than we knew.
_CLOSE_TIMES_SQL = (
    "INSERT INTO market_close_times (ticker, known_at, close_time) "
    "SELECT t, now(), c FROM unnest($1::text[], $2::timestamptz[]) AS u(t, c) ON CONFLICT DO NOTHING"
)


async def _record_close_times(pg: Any, written: Sequence[MarketRow], before: dict[str, Any], o: Written) -> None:
    """Append each close time that changed to the market's history (``markets`` keeps only the latest, and a
    backtest must see the close time as known at each snapshot: an early close is news when it is announced)."""
    changed = [
        (r.ticker, r.close_time)
        for r in written
        if r.close_time is not None and (r.ticker not in before or before[r.ticker]["close_time"] != r.close_time)
    ]
    if changed:
        await pg.execute(_CLOSE_TIMES_SQL, [t for t, _ in changed], [c for _, c in changed])
        _bump(o.new, "market_close_times", len(changed))


async def _insert_staged(
    pg: Any,
    table: str,
    staging: str,
    columns: Sequence[str],
    records: Sequence[Sequence[Any]],
    *,
    returning: str,
    conflict: str = "",
) -> list[Any]:
    """COPY ``records`` into a session-local staging table, then ``INSERT … ON CONFLICT DO NOTHING`` them into
    ``table`` (COPY alone cannot skip duplicates); the rows that were new, as ``returning`` names them."""
    await pg.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await pg.copy_records_to_table(staging, records=records, columns=columns)
    cols = ", ".join(columns)
    new: list[Any] = await pg.fetch(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} ON CONFLICT {conflict}DO NOTHING "
        f"RETURNING {returning}"
    )
    await pg.execute(f"TRUNCATE {staging}")
    return new


async def _write_trades(pg: Any, rows: Sequence[TradeRow], o: Written, touched: set[str], new_rows: NewRows) -> None:
    records = [r.as_tuple() for r in rows]
    new = await _insert_staged(
        pg,
        "trades",
        _TRADE_STAGING,
        _TRADE_COLS,
        records,
        returning="ticker, ts, source, trade_id",
        conflict="(trade_id) ",
    )
    _bump(o.new, "trades", len(new))
    _bump(o.duplicates, "trades", len(rows) - len(new))
    touched.update(r[0] for r in new)
    new_rows.trades.update(r[3] for r in new)
    o.lags.extend(("trade", r[1]) for r in new if r[2] == "websocket")


async def _write_books(pg: Any, rows: Sequence[OrderbookRow], o: Written, touched: set[str], new_rows: NewRows) -> None:
    records = [
        (
            r.ticker,
            r.ts,
            r.source,
            r.received_at,
            r.sequence,
            [lv.price for lv in r.yes],
            [lv.size for lv in r.yes],
            [lv.price for lv in r.no],
            [lv.size for lv in r.no],
        )
        for r in rows
    ]
    new = await _insert_staged(
        pg, "orderbook_snapshots", _BOOK_STAGING, _BOOK_COLS, records, returning="ticker, ts, source"
    )
    _bump(o.new, "orderbook_snapshots", len(new))
    _bump(o.duplicates, "orderbook_snapshots", len(rows) - len(new))
    touched.update(r[0] for r in new)
    new_rows.books.update((r[0], r[1], r[2]) for r in new)


async def _write_gaps(
    pg: Any, rows: Sequence[tuple[int, GapOpened | GapRepaired]], o: Written, new_rows: NewRows
) -> None:
    # In batch order: a repair may follow its opening in the same batch.
    for i, g in rows:
        if isinstance(g, GapOpened):
            status = await pg.execute(
                INSERT_GAP_SQL,
                g.key,
                g.detected_at,
                g.channel,
                g.sid,
                g.market_ticker,
                g.cause,
                g.seq_expected,
                g.seq_received,
                g.gap_start,
                _json(g.details),
            )
            n = int(status.rsplit(" ", 1)[-1])
            _bump(o.new, "feed_gaps", n)
            _bump(o.duplicates, "feed_gaps", 1 - n)
            if n:
                new_rows.gaps[i] = gap_opened_event(g)
        else:
            repaired = await pg.fetch(
                REPAIR_GAP_SQL,
                g.key,
                g.gap_end,
                g.repaired_at,
                g.repair_method,
                _json(g.details),
                g.unrepairable_reason,
            )
            if not repaired:
                o.repairs_unmatched += 1
                log.warning("sink_gap_repair_without_opening", key=g.key)
            else:
                new_rows.gaps[i] = gap_repaired_event(g, repaired[0]["market_ticker"])
