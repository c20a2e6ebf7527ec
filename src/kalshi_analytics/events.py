"""The event journal: every committed change the live stream tells about, with a database-wide id.

A writer appends the events of a change in the SAME transaction as the change, as its last step
(:func:`append`), then notifies (:mod:`kalshi_analytics.notifications`, with ``last_event_id``). Ids are taken by
updating the one row of ``stream_head``: that row stays locked until the transaction ends, so the next writer
gets its ids only after this one committed (or rolled back — then it gets the very same ids: no holes). Hence
ids increase in commit order, every id up to the head exists once it is visible, and a reader that saw id N has
seen everything before it. Every API replica reads the same rows, so ids and payloads are the same everywhere,
and a client's ``Last-Event-ID`` can be resumed by any replica from the database (:func:`read_after`).

A transaction's events are stored as ONE row of ``stream_batches`` (their fields as arrays, ids ``first_id`` to
``last_id``), not a row each: a recorder batch of thousands of rows then costs the journal one insert, where a row
per event had halved the sink's snapshot throughput (``bench/sink.py``: 22–30 k → 11 k rows/s). The view
``stream_events`` shows them one per row, for reading by hand.

The journal is kept for a bounded time (:func:`prune`, run by the recorder's sink): long enough for the stream's
resume window (``STREAM_RESUME_SECONDS``), never for history — the tables are the record.

Adding an event type (e.g. paper trading's orders, fills and positions):

1. add its name to :class:`EventKind` (and to :data:`MARKET_KINDS` if it is about one market: it then carries
   the ticker and reaches the stream clients that asked for that ticker; other kinds reach the clients that name
   them in ``kinds=``), and its payload model next to the feature's schemas;
2. in the transaction that commits the change, call :func:`append` last and :func:`notify` with the id it
   returned;
3. describe it in the stream route's OpenAPI description and the README (API, live stream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from kalshi_analytics import notifications
from kalshi_analytics.db.reads import positional


class EventKind(StrEnum):
    """The ``event:`` names of the live stream's data events."""

    SNAPSHOT = "snapshot"  # a market_snapshots row (any source: poll, websocket, backfill)
    TRADE = "trade"  # a trades row
    ORDERBOOK = "orderbook"  # an orderbook_snapshots row (a full book)
    MARKET_STATUS = "market_status"  # a market's status or result changed (or it was first stored)
    GAP_OPENED = "gap_opened"  # a feed_gaps row opened
    GAP_REPAIRED = "gap_repaired"  # a feed_gaps row closed: repaired, or given up with a reason
    BACKTEST_FINISHED = "backtest_finished"  # a backtest ended: done or failed
    PAPER_FILL = "paper_fill"  # a paper session filled an order
    PAPER_POSITION = "paper_position"  # a paper session's position in a market changed
    PAPER_EQUITY = "paper_equity"  # a paper session's equity point
    PAPER_SESSION = "paper_session"  # a paper session started, stopped, was reset, or something happened to it


#: Kinds about one market: selected by the stream's ``tickers`` (a gap of a whole subscription has no ticker and
#: reaches every client that asked for gaps).
MARKET_KINDS: frozenset[str] = frozenset(
    {
        EventKind.SNAPSHOT,
        EventKind.TRADE,
        EventKind.ORDERBOOK,
        EventKind.MARKET_STATUS,
        EventKind.GAP_OPENED,
        EventKind.GAP_REPAIRED,
    }
)
ALL_KINDS: frozenset[str] = frozenset(EventKind)


class NewEvent(NamedTuple):
    """An event to append: its kind, its market (None for events not about one), and either its JSON payload text
    or the key of the stored row it stands for (``ts`` + ``source`` with the ticker, or ``ref``), which readers
    render (so the writer neither renders nor stores a copy of a row it has just written).

    A named tuple: the recorder makes one per new row, and a tuple is built in half a frozen dataclass's time."""

    kind: str
    ticker: str | None
    payload: str | None = None
    ts: datetime | None = None
    source: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    kind: str
    ticker: str | None
    payload: str | None  # None: the row it stood for is gone


_TAKE_IDS = "UPDATE stream_head SET last_id = last_id + $1 WHERE id = 1 RETURNING last_id"
_INSERT = (
    "INSERT INTO stream_batches (first_id, last_id, kinds, tickers, ts, sources, refs, payloads) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)


async def append(pg: Any, events: Sequence[NewEvent]) -> int | None:
    """Journal ``events`` (in this order) inside the caller's open transaction on the asyncpg connection ``pg``;
    returns the last id (None when there is nothing to append).

    Call it LAST in the transaction: the head row it locks serialises writers until this one commits.
    """
    if not events:
        return None
    if not pg.is_in_transaction():
        # Outside one, the head row's lock would end with the UPDATE: ids would no longer follow commit order.
        raise RuntimeError("events are appended inside the transaction of the change they describe")
    last: int = await pg.fetchval(_TAKE_IDS, len(events))
    await pg.execute(
        _INSERT,
        last - len(events) + 1,
        last,
        [e.kind for e in events],
        [e.ticker for e in events],
        [e.ts for e in events],
        [e.source for e in events],
        [e.ref for e in events],
        [e.payload for e in events],
    )
    return last


async def notify(
    pg: Any,
    last_event_id: int | None,
    *,
    tickers: Sequence[str] = (),
    since: datetime | None = None,
    channel: str = notifications.CHANNEL,
) -> int:
    """Send the commit notice (delivered when the transaction commits); returns how many payloads it took."""
    notice = notifications.CommitNotice(tuple(tickers), since, last_event_id)
    payloads = notifications.render_payloads(notice)
    for payload in payloads:
        await pg.execute("SELECT pg_notify($1, $2)", channel, payload)
    return len(payloads)


async def head(pg: Any) -> int:
    """The last id handed out (0 before the first event)."""
    return int(await pg.fetchval("SELECT last_id FROM stream_head WHERE id = 1"))


# The batches holding ids after ``:after`` (by their last id: the primary key), unnested in order.
_READ = """
SELECT h.last_id AS head, e.id, e.kind, e.ticker, e.payload
FROM stream_head h
LEFT JOIN LATERAL (
    SELECT e.id, e.kind, e.ticker, {payload} AS payload
    FROM stream_batches b
    CROSS JOIN LATERAL unnest(b.kinds, b.tickers, b.ts, b.sources, b.refs, b.payloads) WITH ORDINALITY
        AS u(kind, ticker, ts, source, ref, payload, ord)
    CROSS JOIN LATERAL (SELECT b.first_id + u.ord - 1 AS id, u.kind, u.ticker, u.ts, u.source, u.ref, u.payload) e
    WHERE b.last_id > :after AND b.first_id <= h.last_id AND e.id > :after AND e.id <= h.last_id
      AND (e.ticker IS NULL OR e.ticker = ANY(CAST(:tickers AS text[])))
    ORDER BY e.id LIMIT :limit
) e ON true
WHERE h.id = 1
ORDER BY e.id
"""


async def read_after(
    pg: Any,
    after: int,
    tickers: Sequence[str],
    limit: int,
    *,
    payload_sql: str = "e.payload",
    params: Mapping[str, Any] | None = None,
) -> tuple[int, list[StoredEvent]]:
    """The head and the first ``limit`` events after id ``after`` that concern ``tickers`` or no market, in id
    order, read in one snapshot: when fewer than ``limit`` came back, every matching event up to the head did.

    ``payload_sql`` renders the payload of events that stand for a stored row (an SQL expression over the
    journal row ``e``, with ``:name`` parameters from ``params``); the default reads only stored payloads.
    """
    sql, names = positional(_READ.format(payload=payload_sql))
    values = {**(params or {}), "after": after, "tickers": list(tickers), "limit": limit}
    rows = await pg.fetch(sql, *(values[n] for n in names))
    top = int(rows[0]["head"])
    return top, [StoredEvent(r["id"], r["kind"], r["ticker"], r["payload"]) for r in rows if r["id"] is not None]


_RESUMABLE = """
SELECT h.last_id AS head,
       (SELECT committed_at FROM stream_batches
        WHERE last_id >= $1::bigint + 1 AND first_id <= $1::bigint + 1) AS next_at,
       clock_timestamp() - make_interval(secs => $2) AS horizon
FROM stream_head h WHERE h.id = 1
"""


async def resume_refusal(pg: Any, after: int, window_seconds: float) -> str | None:
    """None when everything after id ``after`` is still journaled and younger than ``window_seconds``; else why
    not (for the stream's ``reset`` event)."""
    row = await pg.fetchrow(_RESUMABLE, after, float(window_seconds))
    top = int(row["head"])
    if after > top:
        return f"event id {after} was never handed out by this database (its last is {top})"
    if after == top:
        return None
    if row["next_at"] is None:
        return f"the events after id {after} are no longer kept"
    if row["next_at"] < row["horizon"]:
        return f"the events after id {after} are older than the resume window ({window_seconds:g} s)"
    return None


_PRUNE = """
WITH gone AS (
    DELETE FROM stream_batches WHERE last_id < coalesce(
        (SELECT first_id FROM stream_batches WHERE committed_at >= clock_timestamp() - make_interval(secs => $1)
         ORDER BY last_id LIMIT 1),
        (SELECT last_id + 1 FROM stream_head WHERE id = 1))
    RETURNING last_id - first_id + 1 AS events
)
SELECT coalesce(sum(events), 0) FROM gone
"""


async def prune(pg: Any, keep_seconds: float) -> int:
    """Delete the events older than ``keep_seconds`` (by id: the oldest one young enough and everything after it
    stays, a transaction's events go together); returns how many went."""
    return int(await pg.fetchval(_PRUNE, float(keep_seconds)))
