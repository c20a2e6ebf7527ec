"""Market queries: plain SQL over the recorder's tables, read inside the request's session.

Every list is keyset-paginated (never OFFSET): the cursor (:mod:`kalshi_analytics.web.cursors`) holds the sort
key of the last row returned, so pages neither repeat nor skip rows while new data arrives. Bad input raises
:class:`~kalshi_analytics.errors.InvalidInputError` naming the parameter (``start``, ``cursor``); an unknown
market :class:`~kalshi_analytics.errors.NotFoundError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from asyncpg import Record

from kalshi_analytics.db.reads import Reads
from kalshi_analytics.errors import InvalidInputError, NotFoundError
from kalshi_analytics.kalshi.status import STATUS_FILTER_MATCHES, MarketStatus
from kalshi_analytics.markets import candle_blocks, snapshot_chunks
from kalshi_analytics.markets.pricing import implied_probability_sql
from kalshi_analytics.web.cursors import (
    Reader,
    cursor_bigint,
    cursor_decimal,
    cursor_text,
    cursor_time,
    decode_cursor,
    encode_cursor,
)

#: Reads run on one pooled asyncpg connection in autocommit mode.
Db = Reads

MarketSort = Literal["ticker", "close_time", "volume", "implied_probability", "change_24h"]

_PROB, _PROB_SOURCE = implied_probability_sql()


# ---------------------------------------------------------------------------------------- JSON rendered in SQL
# The list routes have PostgreSQL render their rows as JSON (C, not Python): 1,440 candles cost ~70 ms a
# request through pydantic and a few ms this way. The shapes are the pydantic models in schemas.py (the
# OpenAPI document); decimals become strings, times RFC 3339 UTC ("…Z"), exactly as pydantic renders them.
# The text is json_build_object's and json_agg's, byte for byte ({"key" : value, …}, elements joined by ", "),
# concatenated field by field: ~40 % less of PostgreSQL's time than building json values (measured).
# Each field expression below is already JSON text, NULL for null.
def _iso(col: str) -> str:
    # pydantic's form: six fraction digits, or none when the microseconds are zero.
    return f"'\"' || replace(to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || 'Z\"'"


def _text(col: str) -> str:
    """A value whose text needs no escaping (a number, a fixed word) as a JSON string."""
    return f"'\"' || ({col})::text || '\"'"


def _str(col: str) -> str:
    """Any text as a JSON string (escaped as json_build_object escapes it)."""
    return f"to_json({col})::text"


def _num(col: str) -> str:
    return f"({col})::text"


def _json_object(fields: Sequence[tuple[str, str]]) -> str:
    parts = [
        ("'{" if i == 0 else "', ") + f"\"{name}\" : ' || COALESCE({expr}, 'null')"
        for i, (name, expr) in enumerate(fields)
    ]
    return "(" + " || ".join(parts) + " || '}')"


def _json_array(obj: str, order: str, where: str | None = None) -> str:
    """json_agg's text of ``obj`` over the group, ``[]`` when empty."""
    agg = f"string_agg({obj}, ', ' ORDER BY {order})" + (f" FILTER (WHERE {where})" if where else "")
    return f"coalesce('[' || {agg} || ']', '[]')"


@dataclass(frozen=True)
class JsonPage:
    """A page rendered by PostgreSQL: ``items`` is JSON array text; ``last`` the key columns of its last row."""

    items: str
    count: int
    more: bool
    last: Record | None


async def _json_page(
    session: Db,
    inner: str,
    *,
    params: dict[str, Any],
    fields: Sequence[tuple[str, str]],
    key_cols: Sequence[str],
    limit: int,
) -> JsonPage:
    """Run ``inner`` — which must SELECT at most ``limit + 1`` rows exposing ``key_cols`` and ``rn``, their
    ``row_number()`` in page order — and aggregate its first ``limit`` rows into one JSON array, in order."""
    keys = ", ".join(f"max({c}) FILTER (WHERE rn = :page_limit) AS {c}" for c in key_cols)
    sql = (
        f"SELECT {_json_array(_json_object(fields), 'rn', 'rn <= :page_limit')} AS items, count(*) AS n, {keys} "
        f"FROM ({inner}) r"
    )
    row = await session.one(sql, {**params, "page_limit": limit})
    n = int(row["n"])
    return JsonPage(items=row["items"], count=min(n, limit), more=n > limit, last=row if n > limit else None)


SortOrder = Literal["asc", "desc"]
Interval = Literal["1m", "5m", "1h", "1d"]

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
MAX_CANDLES = 10_000
DEFAULT_WINDOW = timedelta(days=1)


def window(
    start: datetime | None, end: datetime | None, default: timedelta = DEFAULT_WINDOW
) -> tuple[datetime, datetime]:
    """``[start, end)`` of a history request: ``end`` defaults to now, ``start`` to ``default`` before it."""
    end_ = end or datetime.now(UTC)
    try:
        start_ = start or end_ - default
    except OverflowError:
        raise InvalidInputError("out of range", field="start") from None
    if start_ >= end_:
        raise InvalidInputError("start must be before end", field="start")
    return start_, end_


# --------------------------------------------------------------------------------------------------- markets
_LATEST_JOIN = (
    "LEFT JOIN LATERAL (SELECT ts, received_at, source, sequence, yes_bid, yes_ask, no_bid, no_ask, last_price, "
    "yes_bid_size, yes_ask_size, volume, open_interest, status FROM market_snapshots s "
    "WHERE s.ticker = m.ticker ORDER BY s.ts DESC LIMIT 1) s ON true"
)

_SORT_EXPR = {
    "ticker": ("m.ticker", "text"),
    "close_time": ("COALESCE(m.close_time, 'infinity'::timestamptz)", "timestamptz"),
    "volume": ("COALESCE(m.volume, 0)", "numeric"),
}


#: The sorts by the latest quote: the catalogue is joined to each market's latest snapshot (and the one a day
#: before, for the change) before ordering. A market without a price sorts last either way: its key is a sentinel
#: beyond every value (a probability is 0–1, a change −1–1) on the side the order ends with.
_QUOTE_SORTS = frozenset({"implied_probability", "change_24h"})
_QUOTE_PROB, _ = implied_probability_sql("s.yes_bid", "s.yes_ask", "s.last_price")
_DAY_AGO_PROB, _ = implied_probability_sql("d.yes_bid", "d.yes_ask", "d.last_price")
_CHANGE_24H = f"({_QUOTE_PROB}) - ({_DAY_AGO_PROB})"
CHANGE_WINDOW = timedelta(hours=24)


def _quote_sort_expr(sort: str, order: str) -> str:
    value = _QUOTE_PROB if sort == "implied_probability" else _CHANGE_24H
    return f"COALESCE({value}, {'3' if order == 'asc' else '-3'})"


#: The price a day ago: the latest snapshot at or before ``:day_ago``, or, for a market recorded for less than a
#: day, its first snapshot (the change is then since the recording began).
_DAY_AGO_JOIN = (
    "LEFT JOIN LATERAL ((SELECT yes_bid, yes_ask, last_price FROM market_snapshots d "
    "WHERE d.ticker = m.ticker AND d.ts <= :day_ago ORDER BY d.ts DESC LIMIT 1) UNION ALL "
    "(SELECT yes_bid, yes_ask, last_price FROM market_snapshots d "
    "WHERE d.ticker = m.ticker AND d.ts > :day_ago ORDER BY d.ts ASC LIMIT 1) LIMIT 1) d ON true"
)


def _close_time_key(value: Any) -> str:
    # The sort key as PostgreSQL wrote it: a timestamptz's text, or 'infinity' for markets without a close time.
    return "infinity" if value == "infinity" else cursor_time(value).isoformat()


#: How a markets cursor's sort key is read back: into the text the query casts to the sort's type.
_SORT_KEY: dict[str, Reader] = {
    "ticker": cursor_text,
    "close_time": _close_time_key,
    "volume": lambda value: str(cursor_decimal(value)),
    "implied_probability": lambda value: str(cursor_decimal(value)),
    "change_24h": lambda value: str(cursor_decimal(value)),
}


#: The ``status`` words the markets list takes: Kalshi's filter vocabulary (``open`` = active or inactive, …)
#: and every stored status; a word in both (``closed``, ``settled``) means Kalshi's filter, which includes it.
STATUS_WORDS: dict[str, frozenset[str]] = {
    **{s.value: frozenset({s.value}) for s in MarketStatus},
    **{f.value: frozenset(s.value for s in matches) for f, matches in STATUS_FILTER_MATCHES.items()},
}


def statuses_for(text: str) -> list[str]:
    """The stored statuses a comma-separated ``status`` parameter asks for; InvalidInputError for unknown words."""
    words = [w.strip().lower() for w in text.split(",")]
    unknown = [w for w in words if w not in STATUS_WORDS]
    if unknown:
        accepted = ", ".join(STATUS_WORDS)
        raise InvalidInputError(f"unknown status {', '.join(map(repr, unknown))}: use {accepted}", field="status")
    return sorted(set().union(*(STATUS_WORDS[w] for w in words)))


@dataclass(frozen=True)
class MarketFilter:
    statuses: Sequence[str] | None = None
    category: str | None = None
    series: str | None = None
    event: str | None = None
    q: str | None = None


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_MARKET_SUMMARY_FIELDS = (
    ("ticker", _str("ticker")),
    ("title", _str("title")),
    ("event_ticker", _str("event_ticker")),
    ("series_ticker", _str("series_ticker")),
    ("category", _str("category")),
    ("status", _str("status")),
    ("close_time", _iso("close_time")),
    ("volume", _text("volume")),
    ("open_interest", _text("open_interest")),
    ("yes_price", _text("yes_bid")),
    ("no_price", _text("no_bid")),
    ("yes_bid", _text("yes_bid")),
    ("yes_ask", _text("yes_ask")),
    ("last_price", _text("last_price")),
    ("implied_probability", _text(_PROB)),
    ("implied_probability_source", _text(_PROB_SOURCE)),
    ("change_24h", _text("change_24h")),
    ("last_updated", _iso("last_updated")),
)


async def list_markets(
    session: Db,
    f: MarketFilter,
    *,
    sort: MarketSort,
    order: SortOrder,
    limit: int,
    cursor: str | None,
    max_spread: Decimal,
) -> tuple[JsonPage, str | None]:
    quote_sort = sort in _QUOTE_SORTS
    expr, typ = (_quote_sort_expr(sort, order), "numeric") if quote_sort else _SORT_EXPR[sort]
    where: list[str] = []
    params: dict[str, Any] = {
        "limit": limit + 1,
        "max_spread": max_spread,
        "day_ago": datetime.now(UTC) - CHANGE_WINDOW,
    }
    if f.statuses is not None:
        where.append("m.status = ANY(:statuses)")
        params["statuses"] = list(f.statuses)
    if f.category:
        where.append("lower(m.category) = lower(:category)")
        params["category"] = f.category
    if f.series:
        where.append("m.series_ticker = :series")
        params["series"] = f.series
    if f.event:
        where.append("m.event_ticker = :event")
        params["event"] = f.event
    if f.q:
        where.append("(m.title ILIKE :q OR m.ticker ILIKE :q)")
        params["q"] = _like(f.q)
    kind = f"markets:{sort}:{order}"
    after = ""
    if cursor:
        params["ck"], params["ct"] = decode_cursor(cursor, kind, _SORT_KEY[sort], cursor_text)
        op = ">" if order == "asc" else "<"
        after = f"(%s, m.ticker) {op} (CAST(CAST(:ck AS text) AS {typ}), :ct)"
    direction = "ASC" if order == "asc" else "DESC"
    cols = (
        "m.ticker, m.title, m.event_ticker, m.series_ticker, m.category, m.status, m.close_time, m.volume, "
        "m.open_interest, s.yes_bid, s.yes_ask, s.no_bid, s.last_price, s.ts AS last_updated, "
        f"({_CHANGE_24H}) AS change_24h"
    )
    if not quote_sort:
        # Filter, order and cut the catalogue first; only the page's markets look up their latest snapshot.
        if after:
            where.append(after % expr)
        by = f"{expr} {direction}, m.ticker {direction}"
        inner = (
            f"SELECT {cols}, ({expr})::text AS sort_key, row_number() OVER (ORDER BY {by}) AS rn "
            "FROM (SELECT * FROM markets m "
            + ("WHERE " + " AND ".join(where) + " " if where else "")
            + f"ORDER BY {by} LIMIT :limit) m {_LATEST_JOIN} {_DAY_AGO_JOIN}"
        )
    else:
        # The key needs each filtered market's latest quote: join, then order and cut.
        by = f"k {direction}, ticker {direction}"
        inner = (
            "SELECT *, k::text AS sort_key, row_number() OVER (ORDER BY " + by + ") AS rn FROM ("
            f"SELECT {cols}, {expr} AS k FROM markets m {_LATEST_JOIN} {_DAY_AGO_JOIN} "
            + ("WHERE " + " AND ".join(where) + " " if where else "")
            + ") m "
            + (f"WHERE {after % 'm.k'} " if after else "")
            + f"ORDER BY {by} LIMIT :limit"
        )
    page = await _json_page(
        session, inner, params=params, fields=_MARKET_SUMMARY_FIELDS, key_cols=("sort_key", "ticker"), limit=limit
    )
    next_cursor = None
    if page.last is not None:
        next_cursor = encode_cursor(kind, page.last["sort_key"], page.last["ticker"])
    return page, next_cursor


_MARKET_SQL = (
    "SELECT m.ticker, m.title, m.subtitle, m.event_ticker, m.series_ticker, m.category, m.status, m.open_time, "
    "m.close_time, m.result, m.settlement_value, m.settled_at, m.updated_at, "
    "m.raw->>'rules_primary' AS rules_primary, m.raw->>'rules_secondary' AS rules_secondary, "
    "COALESCE(s.volume, m.volume) AS volume, COALESCE(s.open_interest, m.open_interest) AS open_interest, "
    "s.ts, s.yes_bid, s.yes_ask, s.no_bid, s.no_ask, s.last_price "
    f"FROM markets m {_LATEST_JOIN} WHERE m.ticker = :ticker"
)


async def get_market(session: Db, ticker: str) -> Record:
    row = await session.first(_MARKET_SQL, {"ticker": ticker})
    if row is None:
        raise NotFoundError(f"unknown market {ticker!r}")
    return row


async def ensure_market(session: Db, ticker: str) -> None:
    """NotFoundError for an unknown ticker (called only when a listing came back empty, to tell "none yet" apart)."""
    found = await session.first("SELECT 1 FROM markets WHERE ticker = :t", {"t": ticker})
    if found is None:
        raise NotFoundError(f"unknown market {ticker!r}")


# ------------------------------------------------------------------------------------------------- snapshots
_SNAPSHOT_COLS = (
    "ticker, ts, received_at, source, sequence, yes_bid, yes_ask, no_bid, no_ask, last_price, yes_bid_size, "
    "yes_ask_size, volume, open_interest, status"
)
_LATEST_SQL = f"SELECT {_SNAPSHOT_COLS} FROM market_snapshots WHERE ticker = :ticker ORDER BY ts DESC LIMIT 1"


async def latest_snapshot(session: Db, ticker: str) -> Record:
    row = await session.first(_LATEST_SQL, {"ticker": ticker})
    if row is None:
        await ensure_market(session, ticker)
        raise NotFoundError(f"no snapshot recorded yet for {ticker!r}")
    return row


async def latest_snapshots(session: Db, tickers: Sequence[str]) -> list[Record]:
    """Latest snapshot of each ticker (one index probe per ticker; used by the live stream)."""
    sql = (
        f"SELECT s.* FROM unnest(CAST(:tickers AS text[])) AS t(ticker) CROSS JOIN LATERAL "
        f"(SELECT {_SNAPSHOT_COLS} FROM market_snapshots WHERE ticker = t.ticker ORDER BY ts DESC LIMIT 1) s"
    )
    return list(await session.all(sql, {"tickers": list(tickers)}))


async def unknown_tickers(session: Db, tickers: Sequence[str]) -> list[str]:
    """Those of ``tickers`` that are not stored markets, in the order given."""
    rows = await session.all("SELECT ticker FROM markets WHERE ticker = ANY(CAST(:t AS text[]))", {"t": list(tickers)})
    known = {r["ticker"] for r in rows}
    return [t for t in tickers if t not in known]


async def stream_state(session: Db, tickers: Sequence[str]) -> tuple[int, list[Record]]:
    """The live stream's starting point, read in one snapshot: the event journal's head and the latest snapshot
    of each ticker as of that head (tickers without one are left out)."""
    sql = (
        "SELECT h.last_id AS stream_head, s.* FROM stream_head h LEFT JOIN LATERAL ("
        f"SELECT s.* FROM unnest(CAST(:tickers AS text[])) AS t(ticker) CROSS JOIN LATERAL "
        f"(SELECT {_SNAPSHOT_COLS} FROM market_snapshots WHERE ticker = t.ticker ORDER BY ts DESC LIMIT 1) s"
        ") s ON true WHERE h.id = 1"
    )
    rows = await session.all(sql, {"tickers": list(tickers)})
    return int(rows[0]["stream_head"]), [r for r in rows if r["ticker"] is not None]


SNAPSHOT_FIELDS: tuple[tuple[str, str], ...] = (
    ("ticker", _str("ticker")),
    ("ts", _iso("ts")),
    ("received_at", _iso("received_at")),
    ("source", _str("source")),
    ("sequence", _num("sequence")),
    ("yes_bid", _text("yes_bid")),
    ("yes_ask", _text("yes_ask")),
    ("no_bid", _text("no_bid")),
    ("no_ask", _text("no_ask")),
    ("last_price", _text("last_price")),
    ("yes_bid_size", _text("yes_bid_size")),
    ("yes_ask_size", _text("yes_ask_size")),
    ("volume", _text("volume")),
    ("open_interest", _text("open_interest")),
    ("status", _str("status")),
    ("implied_probability", _text(_PROB)),
    ("implied_probability_source", _text(_PROB_SOURCE)),
)


#: One snapshot as JSON (``:max_spread`` its parameter); the stored snapshot chunks hold the same text.
SNAPSHOT_OBJECT = _json_object(SNAPSHOT_FIELDS)


# ------------------------------------------------------------------------------------- the live stream's rows
# Each expression is JSON text (NULL for null), as _json_object concatenates them.
_TRADE_FIELDS = (
    ("trade_id", _str("trade_id")),
    ("ticker", _str("ticker")),
    ("ts", _iso("ts")),
    ("yes_price", _text("yes_price")),
    ("no_price", _text("no_price")),
    ("count", _text("count")),
    ("taker_side", _str("taker_side")),
    ("is_block_trade", _num("is_block_trade")),
)


def _levels(prices: str, sizes: str) -> str:
    """A side of a book as ``[{price, size}, …]``, best (highest) bid first."""
    return (
        "(SELECT coalesce(json_agg(json_build_object('price', p::text, 'size', z::text) ORDER BY p DESC), '[]')::text "
        f"FROM unnest({prices}, {sizes}) AS l(p, z))"
    )


def _pairs(prices: str, sizes: str, price: str = "p") -> str:
    """A side of a book as ``[[price, size], …]`` (the seed's form), by bid from the highest; ``price`` may turn a
    NO bid into the YES ask it makes (``1 - p``)."""
    return (
        f"(SELECT coalesce(json_agg(json_build_array(({price})::text, z::text) ORDER BY p DESC), '[]')::text "
        f"FROM unnest({prices}, {sizes}) AS l(p, z))"
    )


_BOOK_FIELDS = (
    ("ticker", _str("ticker")),
    ("ts", _iso("ts")),
    ("received_at", _iso("received_at")),
    ("source", _str("source")),
    ("sequence", _num("sequence")),
    ("yes", _levels("yes_prices", "yes_sizes")),
    ("no", _levels("no_prices", "no_sizes")),
    ("best_yes_bid", _text("(SELECT max(p) FROM unnest(yes_prices) AS l(p))")),
    ("best_yes_ask", _text("(SELECT 1 - max(p) FROM unnest(no_prices) AS l(p))")),
    ("yes_bids", _pairs("yes_prices", "yes_sizes")),
    ("yes_asks", _pairs("no_prices", "no_sizes", "1 - p")),
)

#: The JSON of a journal event ``e`` of the live stream (:mod:`kalshi_analytics.events`): the stored row it names,
#: rendered as the REST routes render it (``Snapshot``, ``Trade``, ``OrderBook``), else its own payload. Takes
#: ``:max_spread``. Unqualified columns inside each subquery are the row's, ``e.…`` the event's.
STREAM_PAYLOAD_SQL = (
    "CASE e.kind "
    f"WHEN 'snapshot' THEN (SELECT {_json_object(SNAPSHOT_FIELDS)}::text FROM market_snapshots "
    "WHERE ticker = e.ticker AND ts = e.ts AND source = e.source) "
    f"WHEN 'trade' THEN (SELECT {_json_object(_TRADE_FIELDS)}::text FROM trades WHERE trade_id = e.ref) "
    f"WHEN 'orderbook' THEN (SELECT {_json_object(_BOOK_FIELDS)}::text FROM orderbook_snapshots "
    "WHERE ticker = e.ticker AND ts = e.ts AND source = e.source) "
    "ELSE e.payload END"
)


def _snapshot_rows_sql(after: bool) -> str:
    cond = "AND (ts, source) > (:cts, :csrc) " if after else ""
    return (
        f"SELECT {_SNAPSHOT_COLS}, row_number() OVER (ORDER BY ts, source) AS rn FROM market_snapshots "
        f"WHERE ticker = :ticker AND ts >= :start AND ts < :end {cond}ORDER BY ts, source LIMIT :limit"
    )


async def snapshot_page(
    session: Db,
    ticker: str,
    *,
    start: datetime,
    end: datetime,
    limit: int,
    cursor: str | None,
    max_spread: Decimal,
) -> tuple[JsonPage | snapshot_chunks.ChunkPage, str | None]:
    """Raw snapshots in ``[start, end)``, oldest first, keyset-paginated on the primary key (ts, source): from
    the stored chunks of closed hours where they cover the page (:mod:`snapshot_chunks`), else rendered live."""
    after: tuple[datetime, str] | None = None
    if cursor:
        after = decode_cursor(cursor, "snapshots", cursor_time, cursor_text)
    stored = await _stored_snapshot_page(
        session, ticker, start=start, end=end, limit=limit, after=after, max_spread=max_spread
    )
    if stored is not None:
        key = stored.last
        if not stored.more or key is None:
            return stored, None
        return stored, _snapshot_cursor((snapshot_chunks.from_micros(key[0]), key[1]))
    params: dict[str, Any] = {"ticker": ticker, "start": start, "end": end, "limit": limit + 1}
    params["max_spread"] = max_spread
    if after is not None:
        params["cts"], params["csrc"] = after
    page = await _json_page(
        session,
        _snapshot_rows_sql(after is not None),
        params=params,
        fields=SNAPSHOT_FIELDS,
        key_cols=("ts", "source"),
        limit=limit,
    )
    if page.last is not None:
        return page, _snapshot_cursor((page.last["ts"], page.last["source"]))
    if page.count == 0 and cursor is None:
        await ensure_market(session, ticker)
    return page, None


def _snapshot_cursor(key: tuple[datetime, str]) -> str:
    return encode_cursor("snapshots", key[0].isoformat(), key[1])


async def _stored_snapshot_page(
    session: Db,
    ticker: str,
    *,
    start: datetime,
    end: datetime,
    limit: int,
    after: tuple[datetime, str] | None,
    max_spread: Decimal,
) -> snapshot_chunks.ChunkPage | None:
    """The page from stored chunks (and the rows after the stored hours rendered live); None when the chunks do
    not cover it or it is empty (an empty answer says where the data is)."""
    if after is not None and after[1] not in snapshot_chunks.SOURCES:
        return None  # a key no row has: compared as PostgreSQL's collation would, by the live query
    from_ts = start if after is None else max(start, after[0])
    n = (limit + 1) // snapshot_chunks.CHUNK_ROWS + 3
    params = {"ticker": ticker, "from_hour": candle_blocks.block_of(from_ts), "from": from_ts, "end": end, "n": n}
    chunks = await session.all(snapshot_chunks.READ_SQL, params)
    page = snapshot_chunks.plan_page(
        chunks,
        start_us=snapshot_chunks.micros(start),
        end_us=snapshot_chunks.micros(end),
        after=None if after is None else (snapshot_chunks.micros(after[0]), after[1]),
        limit=limit,
        fetched_all=len(chunks) < n,
        max_spread=max_spread,
    )
    if page is None:
        return None
    if page.live_from is not None:  # rows after the stored hours (the hour being written): rendered live
        room = limit - page.count
        live = await _json_page(
            session,
            _snapshot_rows_sql(False),
            params={
                "ticker": ticker,
                "start": snapshot_chunks.from_micros(page.live_from),
                "end": end,
                "limit": room + 1,
                "max_spread": max_spread,
            },
            fields=SNAPSHOT_FIELDS,
            key_cols=("ts", "source"),
            limit=room,
        )
        pieces = list(page.pieces)
        if live.count:
            pieces.append({"deflate": None, "body": live.items[1:-1]})
        last = page.last
        if live.last is not None and live.last["ts"] is not None:  # the page ends inside the live rows
            last = (snapshot_chunks.micros(live.last["ts"]), live.last["source"])
        page = snapshot_chunks.ChunkPage(pieces, page.count + live.count, last, live.more, None)
    return page if page.count else None


# --------------------------------------------------------------------------------------------------- candles
_CANDLE_COLS = (
    "prob_open, prob_high, prob_low, prob_close, price_open, price_high, price_low, price_close, "
    "yes_bid_close, yes_ask_close, volume, open_interest"
)
_CANDLE_1M = (
    f"SELECT minute AS start, first_ts, last_ts, {_CANDLE_COLS}, snapshots FROM market_candles_1m "
    "WHERE ticker = :ticker AND minute >= :start AND minute < :end"
)


def _first(col: str) -> str:
    return f"(array_agg({col} ORDER BY first_ts) FILTER (WHERE {col} IS NOT NULL))[1] AS {col}"


def _last(col: str) -> str:
    return f"(array_agg({col} ORDER BY last_ts DESC) FILTER (WHERE {col} IS NOT NULL))[1] AS {col}"


_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
# Buckets are aligned on UTC midnight (date_bin's origin); open = first non-null open by first_ts, close = last
# non-null close by last_ts, high/low = max/min — the same order-free rule the recorder folds 1m candles with.
_CANDLE_ROLLUP = (
    f"SELECT date_bin(CAST(:step AS interval), minute, {_ORIGIN}) AS start, "
    "min(first_ts) AS first_ts, max(last_ts) AS last_ts, "
    f"{_first('prob_open')}, max(prob_high) AS prob_high, min(prob_low) AS prob_low, {_last('prob_close')}, "
    f"{_first('price_open')}, max(price_high) AS price_high, min(price_low) AS price_low, {_last('price_close')}, "
    f"{_last('yes_bid_close')}, {_last('yes_ask_close')}, {_last('volume')}, {_last('open_interest')}, "
    "sum(snapshots)::int AS snapshots "
    "FROM market_candles_1m WHERE ticker = :ticker "
    f"AND minute >= date_bin(CAST(:step AS interval), CAST(:start AS timestamptz), {_ORIGIN}) "
    "AND minute < :end GROUP BY 1"
)
CANDLE_FIELDS = (
    ("start", _iso("start")),
    ("first_ts", _iso("first_ts")),
    ("last_ts", _iso("last_ts")),
    *((c, _text(c)) for c in _CANDLE_COLS.split(", ")),
    ("snapshots", _num("snapshots")),
)


def _named(sql: str, *names: str) -> str:
    """``$1``, ``$2``, … as ``:names`` (the form :class:`Reads` takes)."""
    for i, name in reversed(list(enumerate(names, 1))):
        sql = sql.replace(f"${i}", f":{name}")
    return sql


#: One candle as JSON (columns as :data:`_CANDLE_1M` names them); the stored blocks hold the same text.
CANDLE_OBJECT = _json_object(CANDLE_FIELDS)
_CANDLE_JSON = "SELECT {array}, count(*) FROM ({inner}) c"
_CANDLE_ROLLUP_SQL = _CANDLE_JSON.format(array=_json_array(CANDLE_OBJECT, "start"), inner=_CANDLE_ROLLUP)
# 1-minute candles: the closed hours' stored blocks, the rest rendered live per hour.
_CANDLE_1M_SQL = {
    (head, tail): _named(
        candle_blocks.read_sql(CANDLE_OBJECT, head=head, tail=tail), "ticker", "start", "end", "first", "last", "edge"
    )
    for head in (False, True)
    for tail in (False, True)
}
_CANDLE_HOURS_SQL = _named(candle_blocks.hours_sql(CANDLE_OBJECT), "ticker", "hours", "from", "to")


@dataclass(frozen=True)
class CandleBlocks:
    """A window of 1-minute candles as :func:`candle_blocks.read_sql` rows: stored blocks and live text."""

    rows: Sequence[Mapping[str, Any]]


_FIRST_MINUTE_SQL = (
    "SELECT minute FROM market_candles_1m WHERE ticker = :ticker AND minute >= :from AND minute < :end "
    "ORDER BY minute LIMIT 1"
)
_ORIGIN_TS = datetime(2000, 1, 1, tzinfo=UTC)


def bucket_start(ts: datetime, step: timedelta) -> datetime:
    """The start of the candle holding ``ts`` (date_bin's rule: buckets aligned on UTC midnight of 2000-01-01)."""
    return _ORIGIN_TS + (ts - _ORIGIN_TS) // step * step


async def _candle_pieces(session: Db, ticker: str, start: datetime, end: datetime) -> list[Mapping[str, Any]]:
    """The 1-minute candles of ``[start, end)`` as stored blocks and live text per hour, in time order."""
    first, last = candle_blocks.whole_hours(start, end)
    params = {"ticker": ticker, "start": start, "end": end, "first": first, "last": last}
    params["edge"] = candle_blocks.block_of(start)
    edges = start < first, max(last, first) < end  # partial hours at its start and end?
    rows: list[Mapping[str, Any]] = []
    whole = 0  # rows of whole hours: their stored blocks
    for r in await session.all(_CANDLE_1M_SQL[edges], params):
        at = r["start"]
        if first <= at < last:
            whole += 1
            rows.append(r)
        elif r["deflate"] is not None:  # an edge hour with a block: cut, not rendered again
            part = candle_blocks.cut(r, start, end)
            if part is not None:
                rows.append(part)
        else:
            rows.append(r)
    if whole < (last - first) // candle_blocks.BLOCK:  # whole hours without a block (yet): rendered live
        have = {r["start"] for r in rows}
        hours = []
        h = first
        while h < last:
            if h not in have:
                hours.append(h)
            h += candle_blocks.BLOCK
        more = {"ticker": ticker, "hours": hours, "from": hours[0], "to": hours[-1] + candle_blocks.BLOCK}
        rows += await session.all(_CANDLE_HOURS_SQL, more)
    elif not any(edges):
        return rows  # blocks alone, read in time order
    rows.sort(key=lambda r: r["start"])
    return rows


async def candles(
    session: Db, ticker: str, interval: Interval, start: datetime, end: datetime, *, cursor: str | None = None
) -> tuple[str | CandleBlocks, str | None]:
    """The candles of ``[start, end)`` as a JSON array (rendered by PostgreSQL), oldest first — or, when stored
    blocks of closed hours cover part of it, as :class:`CandleBlocks` to be assembled — and the cursor of the
    next page.

    A page spans at most :data:`MAX_CANDLES` buckets. A window that holds more is answered a page at a time:
    each page starts at the first bucket with data at or after the cursor (so empty stretches cost no pages),
    and has a cursor only when data lies beyond it.
    """
    step = INTERVALS[interval]
    kind = f"candles:{interval}"
    page_from = start
    if cursor:
        (page_from,) = decode_cursor(cursor, kind, cursor_time)
        page_from = max(page_from, start)
    page_to, next_cursor = end, None
    if page_from < end and (end - page_from) / step > MAX_CANDLES:
        first = await session.first(
            _FIRST_MINUTE_SQL, {"ticker": ticker, "from": bucket_start(page_from, step), "end": end}
        )
        if first is None:
            page_to = page_from  # nothing at or after the cursor: an empty last page
        else:
            page_from = max(page_from, bucket_start(first["minute"], step))
            try:
                page_to = min(end, bucket_start(page_from, step) + MAX_CANDLES * step)
            except OverflowError:  # a page reaching past the year 9999
                page_to = end
            if page_to < end:
                more = await session.first(_FIRST_MINUTE_SQL, {"ticker": ticker, "from": page_to, "end": end})
                next_cursor = None if more is None else encode_cursor(kind, page_to.isoformat())
    if page_from >= page_to:
        if cursor is None:
            await ensure_market(session, ticker)
        return "[]", None
    params: dict[str, Any] = {"ticker": ticker, "start": page_from, "end": page_to}
    if interval == "1m":
        rows = await _candle_pieces(session, ticker, page_from, page_to)
        if not rows and cursor is None:
            await ensure_market(session, ticker)
        if any(r["deflate"] is not None for r in rows):
            return CandleBlocks(rows), next_cursor
        return "[" + ", ".join(r["body"] for r in rows) + "]", next_cursor
    params["step"] = step
    row = await session.one(_CANDLE_ROLLUP_SQL, params)
    if row[1] == 0 and cursor is None:
        await ensure_market(session, ticker)
    return str(row[0]), next_cursor


_SPAN_SQL = (
    "SELECT (SELECT ts FROM market_snapshots WHERE ticker = :ticker ORDER BY ts LIMIT 1) AS first, "
    "(SELECT ts FROM market_snapshots WHERE ticker = :ticker ORDER BY ts DESC LIMIT 1) AS last"
)


async def data_span(session: Db, ticker: str) -> tuple[datetime | None, datetime | None]:
    """The first and last recorded snapshot times of a market (None, None when nothing is recorded)."""
    row = await session.one(_SPAN_SQL, {"ticker": ticker})
    return row["first"], row["last"]


# ------------------------------------------------------------------------------------------------ order book
_BOOK_SQL = (
    "SELECT ticker, ts, received_at, source, sequence, yes_prices, yes_sizes, no_prices, no_sizes "
    "FROM orderbook_snapshots WHERE ticker = :ticker {at} ORDER BY ts DESC, source DESC LIMIT 1"
)
_BOOK_LATEST = _BOOK_SQL.format(at="")
_BOOK_AT = _BOOK_SQL.format(at="AND ts <= :at")


async def orderbook(session: Db, ticker: str, at: datetime | None) -> Record:
    if at is None:
        row = await session.first(_BOOK_LATEST, {"ticker": ticker})
    else:
        row = await session.first(_BOOK_AT, {"ticker": ticker, "at": at})
    if row is None:
        await ensure_market(session, ticker)
        when = f" at or before {at.isoformat()}" if at is not None else ""
        raise NotFoundError(f"no order book recorded for {ticker!r}{when}")
    return row


def levels_best_first(prices: Sequence[Decimal], sizes: Sequence[Decimal], depth: int) -> list[dict[str, Decimal]]:
    """Kalshi sends bids ascending (best last); the API lists the best ``depth`` levels best first."""
    pairs = sorted(zip(prices, sizes, strict=False), key=lambda p: p[0], reverse=True)
    return [{"price": p, "size": s} for p, s in pairs[:depth]]


# ---------------------------------------------------------------------------------------------------- trades
async def trade_page(
    session: Db,
    ticker: str,
    *,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Record], str | None]:
    """Trades newest first, keyset-paginated on (ts, trade_id)."""
    where = ["ticker = :ticker"]
    params: dict[str, Any] = {"ticker": ticker, "limit": limit + 1}
    if start is not None:
        where.append("ts >= :start")
        params["start"] = start
    if end is not None:
        where.append("ts < :end")
        params["end"] = end
    if cursor:
        params["cts"], params["cid"] = decode_cursor(cursor, "trades", cursor_time, cursor_text)
        where.append("(ts, trade_id) < (:cts, :cid)")
    sql = (
        "SELECT trade_id, ticker, ts, yes_price, no_price, count, taker_side, is_block_trade FROM trades "
        f"WHERE {' AND '.join(where)} ORDER BY ts DESC, trade_id DESC LIMIT :limit"
    )
    rows = await session.all(sql, params)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("trades", rows[-1]["ts"].isoformat(), rows[-1]["trade_id"])
    elif not rows and cursor is None:
        await ensure_market(session, ticker)
    return rows, next_cursor


# ------------------------------------------------------------------------------------------------ feed gaps
_GAPS_SQL = (
    "SELECT id, key, market_ticker AS ticker, channel, cause, detected_at, gap_start, gap_end, repaired_at, "
    "repair_method, unrepairable_reason FROM feed_gaps "
    "WHERE (market_ticker = :ticker OR market_ticker IS NULL) AND gap_start < :end "
    "AND coalesce(gap_end, 'infinity') > :start {after} ORDER BY gap_start, id LIMIT :limit"
)


async def gap_page(
    session: Db, ticker: str, *, start: datetime, end: datetime, limit: int, cursor: str | None
) -> tuple[Sequence[Record], str | None]:
    """Feed gaps about ``ticker`` or a whole subscription (ticker NULL) that overlap ``[start, end)`` — an open
    gap (no ``gap_end``) runs on to now — oldest first, keyset-paginated on (gap_start, id)."""
    params: dict[str, Any] = {"ticker": ticker, "start": start, "end": end, "limit": limit + 1}
    after = ""
    if cursor:
        params["cts"], params["cid"] = decode_cursor(cursor, "gaps", cursor_time, cursor_bigint)
        after = "AND (gap_start, id) > (:cts, :cid)"
    rows = await session.all(_GAPS_SQL.format(after=after), params)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("gaps", rows[-1]["gap_start"].isoformat(), rows[-1]["id"])
    if cursor is None:
        await ensure_market(session, ticker)
    return rows, next_cursor
