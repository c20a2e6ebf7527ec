"""Paper sessions in PostgreSQL: create, read, stop, and what they hold and earned.

The live runner (:mod:`.runner`) advances running sessions; everything here is what the CLI, the API and notebooks
ask of them. A session's money is exact: cash, realised P&L and fees as the runner committed them, positions
valued at their marks (the last bid of their side), so ``total = realised + unrealised`` to the cent.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics import events
from kalshi_analytics.backtests.data import MarketFilter, load_markets
from kalshi_analytics.backtests.service import BacktestRequest, check_filter, resolve
from kalshi_analytics.db.engine import driver_in_transaction
from kalshi_analytics.errors import ConflictError, InvalidInputError, NotFoundError
from kalshi_analytics.live.schemas import (
    SHARPE_GATE,
    SHARPE_SHORT_WINDOW,
    BacktestGate,
    EquityPoint,
    FillView,
    PaperSessionCreate,
    PaperSessionLive,
    PaperSessionView,
    PositionView,
    SessionEventView,
    SessionLinks,
    SessionPerformance,
    StrategyPerformance,
)
from kalshi_analytics.trading.metrics import sharpe_sortino

_Q4 = Decimal("0.0001")
_ZERO = Decimal(0)
MAX_SESSION_TICKERS = 5_000
SECONDS_PER_YEAR = 365 * 86_400


# The latest snapshot time of each market by its (ticker, ts, source) index, one probe per ticker.
_START_SQL = """
SELECT greatest(clock_timestamp(), max(last.ts) + interval '1 microsecond')
FROM unnest($1::text[]) AS t(ticker)
LEFT JOIN LATERAL (
    SELECT s.ts FROM market_snapshots s WHERE s.ticker = t.ticker ORDER BY s.ts DESC LIMIT 1
) last ON true
"""


def session_config(body: PaperSessionCreate) -> dict[str, Any]:
    """What the session's account and fill model are (stored; the runner and ``compare`` read it back)."""
    return {
        "initial_capital": str(body.initial_capital),
        "max_position": str(body.max_position),
        "contract_step": str(body.contract_step),
        "fill_latency_seconds": body.fill_latency_seconds,
        "unknown_size_cap": str(body.unknown_size_cap),
        "trade_quotes": body.trade_quotes,
        # Live sessions fill at the touch: recorded depth arrives as periodic books, too coarse to walk live.
        "walk_book": False,
        "equity_interval_seconds": body.equity_interval_seconds,
    }


def backtest_request(row: Any, start: datetime, end: datetime) -> BacktestRequest:
    """The backtest that replays session ``row`` over ``[start, end)``: same strategy version, parameters,
    markets, account and fill model, on the per-event path the runner uses."""
    cfg = row["config"]
    return BacktestRequest(
        strategy=row["strategy_name"],
        strategy_version=row["strategy_version"],
        params=row["params"],
        start=start,
        end=end,
        market_filter=MarketFilter(tickers=list(row["tickers"])),
        initial_capital=Decimal(cfg["initial_capital"]),
        max_position=Decimal(cfg["max_position"]),
        contract_step=Decimal(cfg["contract_step"]),
        vectorised=False,
        fill_latency_seconds=cfg["fill_latency_seconds"],
        unknown_size_cap=Decimal(cfg["unknown_size_cap"]),
        walk_book=bool(cfg.get("walk_book", False)),
        trade_quotes=bool(cfg["trade_quotes"]),
        equity_interval_seconds=cfg["equity_interval_seconds"],
    )


def validate_create(body: PaperSessionCreate) -> tuple[str, dict[str, Any]]:
    """The strategy's version and validated parameters; :class:`InvalidInputError` naming the field at fault."""
    if body.name is not None and "\x00" in body.name:  # PostgreSQL text cannot hold it
        raise InvalidInputError("text must not contain NUL characters", field="name")
    # Stored in a NUMERIC(18, 4) column: a smaller unit would be rounded away (to a capital of 0, say).
    if body.initial_capital.quantize(_Q4) != body.initial_capital:
        raise InvalidInputError("the capital is in dollars with at most 4 decimal places", field="initial_capital")
    selection = body.selection()
    if selection.is_empty():
        raise InvalidInputError(
            "choose the markets to trade: tickers, series, events or categories", field="market_filter"
        )
    check_filter(selection)
    try:
        req = BacktestRequest(
            strategy=body.strategy,
            strategy_version=body.strategy_version,
            params=body.params,
            start=datetime(2000, 1, 1).astimezone(),
            end=datetime(2000, 1, 2).astimezone(),
            market_filter=selection,
        )
    except ValidationError as exc:
        raise InvalidInputError(str(exc.errors()[0]["msg"]), field="params") from None
    strategy, params = resolve(req)
    dumped = params.model_dump(mode="json")
    try:
        text = json.dumps(dumped, allow_nan=False)
    except ValueError:
        raise InvalidInputError("NaN and Infinity are not allowed", field="params") from None
    if "\\u0000" in text:  # stored as jsonb, which cannot hold it
        raise InvalidInputError("text must not contain NUL characters", field="params")
    return strategy.version, dumped


async def create_session(
    engine: AsyncEngine, body: PaperSessionCreate, *, reset_of: uuid.UUID | None = None
) -> uuid.UUID:
    """Store a running session that trades its markets from now on; returns its id. Nothing is stored when any
    input is refused (:class:`InvalidInputError`)."""
    version, params = validate_create(body)
    selection = body.selection()
    async with engine.begin() as conn:
        pg = await driver_in_transaction(conn)
        markets = await load_markets(pg, selection)
        if not markets:
            raise InvalidInputError("no recorded market matches this selection", field="market_filter")
        if len(markets) > MAX_SESSION_TICKERS:
            raise InvalidInputError(
                f"{len(markets)} markets match; a session trades at most {MAX_SESSION_TICKERS}", field="market_filter"
            )
        # The session trades on what is committed from now on: after every event already journaled, and — so
        # that its backtest (a window of data time) holds exactly the rows it saw — from a data time later than
        # every snapshot of its markets committed so far (the exchange's clock may run ahead of ours).
        head = await events.head(pg)
        tickers = [m.ticker for m in markets]
        start = await pg.fetchval(_START_SQL, tickers)
        row = await pg.fetchrow(
            "INSERT INTO paper_sessions (name, strategy_name, strategy_version, params, market_filter, tickers, "
            "config, initial_capital, restart_policy, status, started_at, cash, last_event_id, reset_of) "
            "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7::jsonb, $8, $9, 'running', $12, $8, $10, $11) "
            "RETURNING id, started_at",
            body.name,
            body.strategy,
            version,
            json.dumps(params),
            selection.model_dump_json(),
            tickers,
            json.dumps(session_config(body)),
            body.initial_capital,
            body.restart_policy,
            head,
            reset_of,
            start,
        )
        details = {"tickers": len(markets), "initial_capital": str(body.initial_capital)}
        if reset_of is not None:
            details["reset_of"] = str(reset_of)
        await add_event(pg, row["id"], row["started_at"], "started", details=details)
    return uuid.UUID(str(row["id"]))


async def add_event(
    pg: Any,
    session_id: uuid.UUID,
    at: datetime,
    kind: str,
    *,
    ticker: str | None = None,
    until: datetime | None = None,
    details: dict[str, Any] | None = None,
    publish: bool = True,
) -> events.NewEvent:
    """Store a session event inside the caller's transaction; returns its ``paper_session`` journal event, which
    ``publish`` appends and announces at once (else the caller journals it with the rest of its transaction's)."""
    await pg.execute(
        "INSERT INTO paper_session_events (session_id, at, kind, ticker, until, details) "
        "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        session_id,
        at,
        kind,
        ticker,
        until,
        json.dumps(details or {}),
    )
    payload = json.dumps(
        {"session_id": str(session_id), "kind": kind, "at": at.isoformat(), "ticker": ticker, **(details or {})}
    )
    event = events.NewEvent(events.EventKind.PAPER_SESSION, None, payload)
    if publish:
        await events.notify(pg, await events.append(pg, [event]))
    return event


async def stop_session(engine: AsyncEngine, session_id: uuid.UUID, reason: str = "stopped by request") -> None:
    """Stop a running session (the runner lets go of it at its next step); :class:`ConflictError` when it is not
    running, :class:`NotFoundError` when there is none."""
    async with engine.begin() as conn:
        pg = await driver_in_transaction(conn)
        row = await pg.fetchrow("SELECT status FROM paper_sessions WHERE id = $1 FOR UPDATE", session_id)
        if row is None:
            raise NotFoundError(f"no paper session {session_id}")
        if row["status"] != "running":
            raise ConflictError(f"paper session {session_id} is already {row['status']}")
        stopped = await pg.fetchval(
            "UPDATE paper_sessions SET status = 'stopped', stopped_at = clock_timestamp(), stop_reason = $2 "
            "WHERE id = $1 RETURNING stopped_at",
            session_id,
            reason,
        )
        await add_event(pg, session_id, stopped, "stopped", details={"reason": reason})


_SESSION_SQL = """
SELECT s.*,
       coalesce((SELECT sum(p.contracts * coalesce(p.mark, p.avg_price, 0)) FROM paper_positions p
                 WHERE p.session_id = s.id AND p.contracts > 0), 0) AS position_value
FROM paper_sessions s
"""


def _links(sid: uuid.UUID) -> SessionLinks:
    base = f"/api/v1/paper-sessions/{sid}"
    return SessionLinks(
        self=base,
        fills=f"{base}/fills",
        positions=f"{base}/positions",
        equity=f"{base}/equity",
        events=f"{base}/events",
        compare=f"{base}/compare",
    )


def _view(r: Any) -> PaperSessionView:
    equity = (r["cash"] + r["position_value"]).quantize(_Q4)
    total = (equity - r["initial_capital"]).quantize(_Q4)
    realised = r["realised_pnl"].quantize(_Q4)
    return PaperSessionView(
        id=r["id"],
        name=r["name"],
        strategy=r["strategy_name"],
        strategy_version=r["strategy_version"],
        params=r["params"],
        market_filter=r["market_filter"],
        tickers=list(r["tickers"]),
        config=r["config"],
        status=r["status"],
        restart_policy=r["restart_policy"],
        created_at=r["created_at"],
        started_at=r["started_at"],
        stopped_at=r["stopped_at"],
        stop_reason=r["stop_reason"],
        reset_of=r["reset_of"],
        initial_capital=r["initial_capital"],
        cash=r["cash"],
        equity=equity,
        total_pnl=total,
        realised_pnl=realised,
        unrealised_pnl=total - realised,
        fees_paid=r["fees_paid"],
        num_fills=r["num_fills"],
        skipped={k: int(v) for k, v in (r["skipped"] or {}).items()},
        processed_until=r["processed_until"],
        last_active_at=r["last_active_at"],
        links=_links(r["id"]),
    )


async def _fetch(engine: AsyncEngine, sql: str, *args: Any) -> list[Any]:
    async with engine.connect() as conn:
        pg = await driver_in_transaction(conn)
        return list(await pg.fetch(sql, *args))


async def get_session(engine: AsyncEngine, session_id: uuid.UUID) -> PaperSessionView:
    rows = await _fetch(engine, _SESSION_SQL + " WHERE s.id = $1", session_id)
    if not rows:
        raise NotFoundError(f"no paper session {session_id}")
    return _view(rows[0])


async def list_sessions(
    engine: AsyncEngine, *, status: str | None = None, strategy: str | None = None, limit: int = 100
) -> list[PaperSessionView]:
    rows = await _fetch(
        engine,
        _SESSION_SQL + " WHERE ($1::text IS NULL OR s.status = $1) AND ($2::text IS NULL OR s.strategy_name = $2) "
        "ORDER BY s.created_at DESC LIMIT $3",
        status,
        strategy,
        limit,
    )
    return [_view(r) for r in rows]


async def _exists(engine: AsyncEngine, session_id: uuid.UUID) -> None:
    if not await _fetch(engine, "SELECT 1 FROM paper_sessions WHERE id = $1", session_id):
        raise NotFoundError(f"no paper session {session_id}")


async def get_fills(engine: AsyncEngine, session_id: uuid.UUID, *, after: int = 0, limit: int = 1000) -> list[FillView]:
    await _exists(engine, session_id)
    rows = await _fetch(engine, _FILLS_SQL + " AND id > $2 ORDER BY id LIMIT $3", session_id, after, limit)
    return [_fill(r) for r in rows]


_FILLS_SQL = (
    "SELECT id, ticker, side, action, price, count, fee, cash_after, snapshot_ts AS ts, snapshot_source AS source, "
    "signal, committed_at FROM paper_fills WHERE session_id = $1"
)
_POSITIONS_SQL = (
    "SELECT * FROM paper_positions WHERE session_id = $1 AND (NOT $2 OR contracts > 0) ORDER BY ticker, side"
)
_EQUITY_SQL = "SELECT ts, equity, cash FROM paper_equity WHERE session_id = $1 ORDER BY ts"
_EVENTS_SQL = (
    "SELECT id, at, kind, ticker, until, details, recorded_at FROM paper_session_events WHERE session_id = $1 "
    "ORDER BY id"
)


def _fill(r: Any) -> FillView:
    return FillView(**{**dict(r), "signal": r["signal"]})


def _position(r: Any) -> PositionView:
    unreal = None
    if r["mark"] is not None and r["avg_price"] is not None:
        unreal = (r["contracts"] * (r["mark"] - r["avg_price"])).quantize(_Q4)
    return PositionView(
        ticker=r["ticker"],
        side=r["side"],
        contracts=r["contracts"],
        avg_price=None if r["avg_price"] is None else r["avg_price"].quantize(_Q4),
        mark=r["mark"],
        unrealized_pnl=unreal,
        updated_at=r["updated_at"],
    )


async def get_positions(engine: AsyncEngine, session_id: uuid.UUID, *, open_only: bool = True) -> list[PositionView]:
    await _exists(engine, session_id)
    rows = await _fetch(engine, _POSITIONS_SQL, session_id, open_only)
    return [_position(r) for r in rows]


async def get_equity(engine: AsyncEngine, session_id: uuid.UUID) -> list[EquityPoint]:
    await _exists(engine, session_id)
    rows = await _fetch(engine, _EQUITY_SQL, session_id)
    return [EquityPoint(ts=r["ts"], equity=r["equity"], cash=r["cash"]) for r in rows]


async def get_events(engine: AsyncEngine, session_id: uuid.UUID) -> list[SessionEventView]:
    await _exists(engine, session_id)
    rows = await _fetch(engine, _EVENTS_SQL, session_id)
    return [SessionEventView(**dict(r)) for r in rows]


async def live_state(engine: AsyncEngine, session_id: uuid.UUID, *, fills_limit: int = 500) -> PaperSessionLive:
    """A session, its open positions, latest fills, equity and events as ONE snapshot of the database sees them,
    with the journal's head in that snapshot.

    Journal ids are taken under the head row's lock and become visible with their transaction's changes
    (:mod:`kalshi_analytics.events`), so a REPEATABLE READ snapshot that reads head N holds exactly the paper
    changes journaled up to N: the stream resumed after N brings the rest, each once."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        pg: Any = raw.driver_connection
        async with pg.transaction(isolation="repeatable_read", readonly=True):
            head = await events.head(pg)
            row = await pg.fetchrow(_SESSION_SQL + " WHERE s.id = $1", session_id)
            if row is None:
                raise NotFoundError(f"no paper session {session_id}")
            positions = await pg.fetch(_POSITIONS_SQL, session_id, True)
            fills = await pg.fetch(
                f"SELECT * FROM ({_FILLS_SQL} ORDER BY id DESC LIMIT $2) f ORDER BY id", session_id, fills_limit
            )
            equity = await pg.fetch(_EQUITY_SQL, session_id)
            evs = await pg.fetch(_EVENTS_SQL, session_id)
        await conn.rollback()
    return PaperSessionLive(
        as_of_event_id=head,
        session=_view(row),
        positions=[_position(r) for r in positions],
        fills=[_fill(r) for r in fills],
        equity=[EquityPoint(ts=r["ts"], equity=r["equity"], cash=r["cash"]) for r in equity],
        events=[SessionEventView(**dict(r)) for r in evs],
    )


def sharpe_of(points: Sequence[tuple[datetime, Decimal]]) -> float | None:
    """Annualised Sharpe ratio (365 days) of an equity series sampled at irregular times."""
    import numpy as np

    if len(points) < 3:
        return None
    ts = np.array([p[0].timestamp() for p in points])
    eq = np.array([float(p[1]) for p in points])
    d = np.diff(ts) / SECONDS_PER_YEAR
    with np.errstate(divide="ignore", invalid="ignore"):
        r = eq[1:] / eq[:-1] - 1
    ok = (d > 0) & np.isfinite(r)
    sharpe, _ = sharpe_sortino(r[ok], d[ok])
    return sharpe if sharpe is None or math.isfinite(sharpe) else None


def max_drawdown(values: Sequence[Decimal]) -> Decimal:
    peak: Decimal | None = None
    worst = _ZERO
    for v in values:
        peak = v if peak is None or v > peak else peak
        worst = max(worst, peak - v)
    return worst.quantize(_Q4)


async def session_performance(engine: AsyncEngine, view: PaperSessionView) -> SessionPerformance:
    points = await get_equity(engine, view.id)
    positions = await get_positions(engine, view.id)
    series = [(p.ts, p.equity) for p in points]
    if view.processed_until is not None and (not series or series[-1][0] < view.processed_until):
        series.append((view.processed_until, view.equity))
    exposure = sum(((p.avg_price or _ZERO) * p.contracts for p in positions), _ZERO).quantize(_Q4)
    return SessionPerformance(
        id=view.id,
        status=view.status,
        total_pnl=view.total_pnl,
        realized_pnl=view.realised_pnl,
        unrealized_pnl=view.unrealised_pnl,
        sharpe_ratio=sharpe_of(series),
        max_drawdown=max_drawdown([view.initial_capital] + [e for _, e in series]),
        exposure=exposure,
        fees_paid=view.fees_paid,
        num_fills=view.num_fills,
        positions=positions,
    )


async def backtest_gate(
    engine: AsyncEngine, strategy: str, window: tuple[datetime | None, datetime | None] = (None, None)
) -> BacktestGate:
    """The strategy's latest finished backtest Sharpe ratio against :data:`SHARPE_GATE`; with ``window``, the latest
    whose data window lies within it (either side open)."""
    rows = await _fetch(
        engine,
        "SELECT id, window_start, window_end, (metrics->>'sharpe')::float8 AS sharpe, "
        "(metrics->'annualisation'->>'returns')::float8 * (metrics->'annualisation'->>'interval_seconds')::float8 "
        "AS span_seconds FROM backtest_results "
        "WHERE strategy_name = $1 AND status = 'done' AND ($2::timestamptz IS NULL OR window_start >= $2) "
        "AND ($3::timestamptz IS NULL OR window_end <= $3) ORDER BY finished_at DESC NULLS LAST LIMIT 1",
        strategy,
        window[0],
        window[1],
    )
    if not rows:
        return BacktestGate(
            backtest_id=None,
            sharpe_ratio=None,
            window_start=None,
            window_end=None,
            passed=False,
            note=f"no finished backtest of {strategy!r}: run one before trusting it live (gate: Sharpe ≥ "
            f"{SHARPE_GATE})",
        )
    r = rows[0]
    sharpe = r["sharpe"]
    passed = sharpe is not None and sharpe >= SHARPE_GATE
    shown = "none" if sharpe is None else f"{sharpe:.2f}"
    return BacktestGate(
        backtest_id=r["id"],
        sharpe_ratio=sharpe,
        window_start=r["window_start"],
        window_end=r["window_end"],
        passed=passed,
        note=f"latest backtest Sharpe {shown} {'≥' if passed else '<'} {SHARPE_GATE}"
        + ("" if passed else ": the seed's gate for live trading is not met")
        + _short_window(sharpe, r["span_seconds"]),
    )


def _short_window(sharpe: float | None, span_seconds: float | None) -> str:
    """A caution when the Sharpe ratio was annualised from less than :data:`SHARPE_SHORT_WINDOW` of data."""
    if sharpe is None or span_seconds is None or span_seconds >= SHARPE_SHORT_WINDOW.total_seconds():
        return ""
    span = timedelta(seconds=round(span_seconds))
    told = f"{span.total_seconds() / 3600:.1f} h" if span >= timedelta(hours=1) else f"{span.seconds // 60} min"
    return f" (annualised from {told} of data: too short to read; run it over a week or more)"


async def strategy_performance(
    engine: AsyncEngine, strategy: str, *, gate_window: tuple[datetime | None, datetime | None] = (None, None)
) -> StrategyPerformance:
    """The seed's ``GET /api/v1/strategies/{name}/performance`` over the strategy's running sessions."""
    resolve(
        BacktestRequest(
            strategy=strategy,
            start=datetime(2000, 1, 1).astimezone(),
            end=datetime(2000, 1, 2).astimezone(),
        )
    )  # an unknown strategy is a 404/422 like everywhere else
    sessions = await list_sessions(engine, status="running", strategy=strategy)
    per = [await session_performance(engine, s) for s in sessions]
    total = sum((p.total_pnl for p in per), _ZERO)
    realised = sum((p.realized_pnl for p in per), _ZERO)
    sharpe = per[0].sharpe_ratio if len(per) == 1 else None
    return StrategyPerformance(
        strategy=strategy,
        total_pnl=total,
        unrealized_pnl=total - realised,
        realized_pnl=realised,
        sharpe_ratio=sharpe,
        max_drawdown=max((p.max_drawdown for p in per), default=_ZERO),
        exposure=sum((p.exposure for p in per), _ZERO),
        positions=[pos for p in per for pos in p.positions],
        sessions=per,
        backtest_gate=await backtest_gate(engine, strategy, gate_window),
    )
