"""Backtests as a service: the functions the REST layer (and the CLI, and notebooks) call.

- :func:`run_backtest` ``(engine, request) -> BacktestResultId`` validates, loads, simulates, computes metrics and
  persists in one call (status ``done``), returning the new ``backtest_results.id``.
- :func:`enqueue_backtest` ``(engine, request) -> BacktestResultId`` only validates and stores a ``queued`` row (what
  ``POST /api/v1/backtests`` should do before answering 202); :func:`execute_queued` ``(engine)`` is the worker:
  it claims queued rows with ``FOR UPDATE SKIP LOCKED`` (many workers may run), runs them and stores the result
  (``done``) or the error (``failed``).
- :func:`grid_runs` expands a sweep's parameter grid within its size limit.
- :func:`get_result` ``(engine, id) -> BacktestResultView`` and :func:`get_executions` read back;
  :func:`list_results` and :func:`execution_page` are the API's keyset-paginated listings.

Input errors raise :class:`~kalshi_analytics.errors.InvalidInputError` naming the request field at fault
(:func:`check_request` holds every rule; an unknown strategy is the strategies'
:class:`~kalshi_analytics.strategies.registry.UnknownStrategyError`); a request that would run on no data raises
:class:`~kalshi_analytics.errors.NoDataError` (:func:`check_data`) from :func:`run_backtest` and
:func:`enqueue_backtest` unless ``keep_empty``; an unknown id raises :class:`~kalshi_analytics.errors.NotFoundError`.
Progress is reported through :class:`~kalshi_analytics.backtests.progress.OnPhase`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import json
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NewType

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kalshi_analytics.backtests import events as backtest_events
from kalshi_analytics.backtests.books import load_books
from kalshi_analytics.backtests.cache import ColumnarCache, load_dataset_cached, speculate
from kalshi_analytics.backtests.data import Dataset, MarketFilter, _where, load_dataset
from kalshi_analytics.backtests.engine import (
    EngineConfig,
    Execution,
    Intents,
    Progress,
    SimulationResult,
    book_points,
    plan,
    simulate,
    uses_vectorised,
)
from kalshi_analytics.backtests.progress import OnPhase, no_progress
from kalshi_analytics.db import locks
from kalshi_analytics.db.engine import driver_in_transaction
from kalshi_analytics.errors import InvalidInputError, NoDataError, NotFoundError, UnavailableError
from kalshi_analytics.strategies import registry
from kalshi_analytics.strategies.base import Strategy, StrategyParams
from kalshi_analytics.trading.fills import DEFAULT_UNKNOWN_SIZE_CAP, DisplayedLiquidity
from kalshi_analytics.trading.metrics import compute_metrics
from kalshi_analytics.web.cursors import cursor_bigint, cursor_time, cursor_uuid, decode_cursor, encode_cursor

BacktestResultId = NewType("BacktestResultId", uuid.UUID)
#: The advisory lock creates take turns on to count the queue: "KALSHI" then 0002 (the recorder's is 0001).
QUEUE_LOCK_KEY = locks.BACKTEST_QUEUE
#: ``Retry-After`` of a create refused because the queue is full: a few runs' time.
QUEUE_RETRY_AFTER_SECONDS = 30
#: Windows outside these bounds are refused: no recorded data can lie there, and extreme years break timezone
#: arithmetic in the driver.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class BacktestQueueFullError(UnavailableError):
    """As many backtests are queued as allowed (``API_BACKTEST_QUEUE_MAX``): HTTP 503 with ``Retry-After``."""


def grid_runs(axes: dict[str, list[Any]], *, max_runs: int, field: str = "grid") -> list[dict[str, Any]]:
    """Every combination of a parameter grid (``{name: values}``), refused with :class:`InvalidInputError`
    naming ``field`` when there are more than ``max_runs`` — counted before anything is expanded."""
    runs = math.prod(len(values) for values in axes.values())
    if runs > max_runs:
        dims = " × ".join(str(len(values)) for values in axes.values())
        raise InvalidInputError(
            f"{field}: {runs} runs ({dims}) is more than the limit of {max_runs} (BACKTEST_SWEEP_MAX_RUNS)",
            field=field,
        )
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


FILL_LATENCY_DOC = "Decision-to-fill delay: an intent fills on its market's first snapshot at or after this."
UNKNOWN_SIZE_DOC = "Contracts a level is taken to hold where no size was recorded (such fills flag the result)."
WALK_BOOK_DOC = "Walk recorded order-book levels beyond the touch when an order is larger than the touch."
TRADE_QUOTES_DOC = (
    "Quote a snapshot that recorded a trade and no quote (candle imports) at that trade, both sides, size unknown; "
    "such fills flag the result price_from_trades. Off: those snapshots have no quote."
)
INTERVAL_DOC = "Seconds of data time between the equity curve's regular samples (returns are measured on them)."
#: The request fields stored in ``backtest_results.market_filter`` beside the filter (the API shows them as
#: ``config``).
CONFIG_KEYS = (
    "initial_capital",
    "max_position",
    "contract_step",
    "vectorised",
    "fill_latency_seconds",
    "unknown_size_cap",
    "walk_book",
    "trade_quotes",
    "equity_interval_seconds",
)


class BacktestRequest(BaseModel):
    """One backtest to run. ``params`` are validated against the strategy's ``Params`` model."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    strategy_version: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    start: datetime
    end: datetime
    market_filter: MarketFilter = Field(default_factory=MarketFilter)
    initial_capital: Decimal = Field(Decimal(10_000), gt=0)
    max_position: Decimal = Field(Decimal(10_000), gt=0)
    contract_step: Decimal = Field(Decimal(1), gt=0, description="Fill sizes are rounded down to this.")
    vectorised: bool | None = None
    fill_latency_seconds: float = Field(0.0, ge=0, le=86_400, allow_inf_nan=False, description=FILL_LATENCY_DOC)
    unknown_size_cap: Decimal = Field(DEFAULT_UNKNOWN_SIZE_CAP, gt=0, description=UNKNOWN_SIZE_DOC)
    walk_book: bool = Field(True, description=WALK_BOOK_DOC)
    trade_quotes: bool = Field(True, description=TRADE_QUOTES_DOC)
    equity_interval_seconds: float = Field(60.0, ge=1, le=86_400, allow_inf_nan=False, description=INTERVAL_DOC)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            initial_capital=self.initial_capital,
            max_position=self.max_position,
            contract_step=self.contract_step,
            vectorised=self.vectorised,
            fill_model=DisplayedLiquidity(
                unknown_size_cap=self.unknown_size_cap,
                latency_seconds=self.fill_latency_seconds,
                walks_book=self.walk_book,
                trade_quotes=self.trade_quotes,
            ),
            equity_interval_seconds=self.equity_interval_seconds,
        )

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


def validate_request(
    strategy: str,
    params: dict[str, Any] | None,
    start: datetime,
    end: datetime,
    *,
    strategy_version: str | None = None,
    **kw: Any,
) -> BacktestRequest:
    """Build a request and :func:`check_request` it; every problem is an :class:`InvalidInputError`."""
    try:
        req = BacktestRequest(
            strategy=strategy, strategy_version=strategy_version, params=params or {}, start=start, end=end, **kw
        )
    except ValidationError as exc:
        raise InvalidInputError(_one_line(exc), errors=_field_errors(exc)) from None
    check_request(req)
    return req


def check_request(req: BacktestRequest) -> tuple[Strategy, StrategyParams]:
    """Everything that keeps ``req`` from running or being stored, reported against the field at fault: the
    one set of rules the CLI, the API and notebooks share (:func:`validate_request` calls it)."""
    check_window(req.start, req.end)
    check_filter(req.market_filter)
    strategy, params = resolve(req)
    for key, value in req.model_dump(mode="json").items():  # stored as jsonb: no NUL, no NaN/Infinity
        try:
            dumped = json.dumps(value, allow_nan=False)
        except ValueError:
            raise InvalidInputError("NaN and Infinity are not allowed", field=key) from None
        if "\\u0000" in dumped:
            raise InvalidInputError("text must not contain NUL characters", field=key)
    return strategy, params


def check_window(start: datetime, end: datetime) -> None:
    """``[start, end)`` within the years data can lie in (:data:`EARLIEST` to :data:`LATEST`), end after start."""
    for name, ts in (("start", start), ("end", end)):
        if not EARLIEST <= ts <= LATEST:
            raise InvalidInputError(f"{name} must lie between {EARLIEST.year} and {LATEST.year}", field=name)
    if end <= start:
        raise InvalidInputError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})", field="end")


#: What one name of a market filter may be (tickers are ASCII of a few dozen characters).
_FILTER_NAMES = {"tickers": "ticker", "series": "series", "events": "event", "categories": "category"}
FILTER_NAME_MAX = 200


def check_filter(f: MarketFilter) -> None:
    """Each name of the filter is text a market could carry: not empty, not huge, no control characters."""
    for key, noun in _FILTER_NAMES.items():
        field = f"market_filter.{key}"
        for name in getattr(f, key):
            if not name.strip():
                raise InvalidInputError(f"a {noun} must not be empty", field=field)
            if len(name) > FILTER_NAME_MAX:
                raise InvalidInputError(
                    f"{noun} {name[:20]!r}… is longer than {FILTER_NAME_MAX} characters", field=field
                )
            if not name.isprintable():
                raise InvalidInputError(f"{noun} {name!r} contains a control character", field=field)


#: Each filter list, the noun of one of its names, and the market column a name must equal.
_FILTER_COLUMNS = {
    "tickers": ("ticker", "m.ticker"),
    "series": ("series", "m.series_ticker"),
    "events": ("event", "m.event_ticker"),
    "categories": ("category", "lower(coalesce(m.category, se.category))"),  # as data._where matches them
}
_MARKETS = "FROM markets m LEFT JOIN series se ON se.ticker = m.series_ticker"
#: Up to this many selected markets, a "no snapshots" answer says when they do hold some (2 probes each).
RANGE_HINT_MARKETS = 1000


async def check_data(engine: AsyncEngine, req: BacktestRequest) -> None:
    """Raise :class:`NoDataError` when ``req`` would run on nothing: a filter name no recorded market carries
    (naming that filter field), names that each exist but select no market together, or a window with no snapshot
    of the selected markets (saying when they do have some). Cheap when there is data: it stops at the first
    snapshot found, one index probe per selected market at most."""
    f = req.market_filter
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        for key, (noun, column) in _FILTER_COLUMNS.items():
            names = list(dict.fromkeys(getattr(f, key)))
            if not names:
                continue
            value = "lower(n)" if key == "categories" else "n"
            unknown = await driver.fetch(
                f"SELECT n FROM unnest($1::text[]) WITH ORDINALITY AS u(n, i) WHERE NOT EXISTS "
                f"(SELECT 1 {_MARKETS} WHERE {column} = {value}) ORDER BY i",
                names,
            )
            if unknown:
                shown = ", ".join(repr(r["n"]) for r in unknown[:5])
                more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
                where_ = "" if key == "tickers" else f"in {noun} "
                raise NoDataError(f"no recorded market {where_}{shown}{more}", field=f"market_filter.{key}")
        where, args = _where(f)
        n = len(args)
        hit = await driver.fetchval(
            f"SELECT 1 {_MARKETS} CROSS JOIN LATERAL (SELECT 1 FROM market_snapshots s WHERE s.ticker = m.ticker "
            f"AND s.ts >= ${n + 1} AND s.ts < ${n + 2} LIMIT 1) AS hit WHERE {where} LIMIT 1",
            *args,
            req.start,
            req.end,
        )
        if hit is not None:
            return
        selected = await driver.fetchval(f"SELECT count(*) {_MARKETS} WHERE {where}", *args)
        if selected == 0:
            raise NoDataError("no recorded market matches all of the filter's conditions", field="market_filter")
        window = f"between {_utc(req.start)} and {_utc(req.end)}"
        which = "1 selected market" if selected == 1 else f"{selected} selected markets"
        hint = ""
        if selected <= RANGE_HINT_MARKETS:
            first, last = await driver.fetchrow(
                f"SELECT min(a.ts), max(b.ts) {_MARKETS} "
                "LEFT JOIN LATERAL (SELECT ts FROM market_snapshots s WHERE s.ticker = m.ticker "
                "ORDER BY ts LIMIT 1) a ON true "
                "LEFT JOIN LATERAL (SELECT ts FROM market_snapshots s WHERE s.ticker = m.ticker "
                f"ORDER BY ts DESC LIMIT 1) b ON true WHERE {where}",
                *args,
            )
            if first is None:
                hint = "; it has no snapshot at all" if selected == 1 else "; none of them has a snapshot"
            else:
                they = "it holds" if selected == 1 else "they hold"
                hint = f"; {they} snapshots from {_utc(first)} to {_utc(last)}"
        raise NoDataError(f"no snapshots {window} in the {which}{hint}")


def _utc(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _one_line(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "input"
        parts.append(f"{loc}: {e['msg']}" + (f" (got {e['input']!r})" if "input" in e and loc != "input" else ""))
    return "; ".join(parts)


def _field_errors(exc: ValidationError, *prefix: str) -> list[tuple[str, str]]:
    return [(".".join([*prefix, *(str(p) for p in e["loc"])]), e["msg"]) for e in exc.errors()]


def resolve(req: BacktestRequest) -> tuple[Strategy, StrategyParams]:
    strategy = registry.get_strategy(req.strategy, req.strategy_version)
    try:
        params = strategy.parse_params(req.params)
    except ValidationError as exc:
        raise InvalidInputError(
            f"{strategy.name}: {_one_line(exc)}", field="params", errors=_field_errors(exc, "params")
        ) from None
    return strategy, params


@dataclass
class BacktestOutcome:
    """Everything a run produced (before or without persistence)."""

    request: BacktestRequest
    strategy_version: str
    params: dict[str, Any]
    sim: SimulationResult
    metrics: dict[str, Any]
    load_seconds: float
    metrics_seconds: float
    no_data: bool
    message: str | None = None


async def load_for(engine: AsyncEngine, req: BacktestRequest, cache: ColumnarCache | None = None) -> Dataset:
    if cache is None:
        return await load_dataset(engine, req.start, req.end, req.market_filter)
    return await load_dataset_cached(engine, req.start, req.end, req.market_filter, cache)


async def compute_backtest(
    engine: AsyncEngine,
    req: BacktestRequest,
    *,
    dataset: Dataset | None = None,
    cache: ColumnarCache | None = None,
    progress: OnPhase = no_progress,
) -> BacktestOutcome:
    """Load (unless ``dataset`` is given; from ``cache``, kept current, when given), simulate and measure; no writes.
    ``progress`` hears the ``load`` and ``simulate`` phases.

    With a cache whose files cover the window, the run starts on them at once and the simulation (in a worker
    thread) overlaps PostgreSQL's check that they are current; if they were not, the cache is brought up to date
    and the run starts again."""
    strategy, params = resolve(req)
    progress("load", 0, None)
    guess = await speculate(engine, req.start, req.end, req.market_filter, cache) if dataset is None and cache else None
    if guess is not None:
        stale = threading.Event()
        run = asyncio.ensure_future(_compute(engine, req, strategy, params, guess.dataset, progress, stale=stale))
        try:
            current = await guess.confirm()
        except BaseException:
            stale.set()
            await asyncio.gather(run, return_exceptions=True)
            raise
        if current:
            return await run
        stale.set()  # the simulation stops at its next progress point; whatever it did is void
        await asyncio.gather(run, return_exceptions=True)
        del guess, run  # the stale files' maps
    ds = dataset if dataset is not None else await load_for(engine, req, cache)
    return await _compute(engine, req, strategy, params, ds, progress)


class _Stale(Exception):
    """A speculative run learnt that its data were not current."""


async def _compute(  # noqa: PLR0917 - internal, the arguments of compute_backtest
    engine: AsyncEngine,
    req: BacktestRequest,
    strategy: Strategy,
    params: StrategyParams,
    ds: Dataset,
    progress: OnPhase,
    *,
    stale: threading.Event | None = None,
) -> BacktestOutcome:
    """The run on ``ds``. With ``stale`` (a speculative run): the simulation runs in a worker thread, so the event
    loop serves the check beside it, and gives up at its next progress point once ``stale`` is set."""

    def abort(phase: str, done: int, total: int) -> None:
        if stale is not None and stale.is_set():
            raise _Stale

    intents = None
    if req.walk_book and ds.rows and ds.books is None:
        # Recorded depth, only where an order can be larger than the touch (all of the window on the per-event
        # path, whose orders are not known in advance).
        cfg = req.engine_config()
        if uses_vectorised(strategy, cfg):
            intents = plan(ds, strategy, params, cfg, abort if stale is not None else None)
        if intents is not None and intents.usable:
            books = await load_books(engine, ds, book_points(ds, intents))
        else:
            books = await load_books(engine, ds)
        if books is not None:
            ds = dataclasses.replace(ds, books=books)  # not the caller's dataset: its books suit this run only
    progress("load", ds.rows, ds.rows)
    progress("simulate", 0, ds.rows)
    if stale is not None:
        out = await asyncio.to_thread(outcome_for, req, strategy, params, ds, intents=intents, progress=abort)
    else:
        out = outcome_for(req, strategy, params, ds, intents=intents)
    progress("simulate", ds.rows, ds.rows)
    return out


def outcome_for(
    req: BacktestRequest,
    strategy: Strategy,
    params: StrategyParams,
    ds: Dataset,
    *,
    intents: Intents | None = None,
    progress: Progress | None = None,
) -> BacktestOutcome:
    sim = simulate(ds, strategy, params, req.engine_config(), progress, intents=intents)
    t0 = time.perf_counter()
    metrics = compute_metrics(sim) | sim.run_info()
    metrics["timings"] = {"load_seconds": ds.load_seconds, "simulate_seconds": sim.simulate_seconds}
    no_data = ds.rows == 0
    message = "no snapshots in the window for the selected markets" if no_data else None
    if no_data:
        metrics["message"] = message
    return BacktestOutcome(
        request=req,
        strategy_version=strategy.version,
        params=params.model_dump(mode="json"),
        sim=sim,
        metrics=metrics,
        load_seconds=ds.load_seconds,
        metrics_seconds=time.perf_counter() - t0,
        no_data=no_data,
        message=message,
    )


# ------------------------------------------------------------------------------------------------ persistence
_INSERT_RESULT = text(
    "INSERT INTO backtest_results (strategy_name, strategy_version, params, window_start, window_end, "
    "market_filter, status, started_at) VALUES (:name, :version, CAST(:params AS jsonb), :start, :end, "
    "CAST(:filter AS jsonb), :status, :started) RETURNING id"
)
_EXEC_COLUMNS = (
    "backtest_id",
    "ticker",
    "side",
    "size",
    "entry_ts",
    "entry_price",
    "entry_snapshot_ts",
    "entry_snapshot_source",
    "exit_ts",
    "exit_price",
    "exit_snapshot_ts",
    "exit_snapshot_source",
    "exit_reason",
    "fees",
    "pnl",
    "signal",
)


def _equity_json(sim: SimulationResult) -> dict[str, Any]:
    ts, equity = sim.curve_points()
    return {
        "ts": [datetime.fromtimestamp(float(t), UTC).isoformat() for t in ts],
        "equity": [round(float(v), 4) for v in equity],
        "interval_seconds": sim.curve.interval_seconds,
    }


async def _insert_request(
    engine: AsyncEngine, req: BacktestRequest, version: str, params: dict[str, Any], status: str
) -> uuid.UUID:
    async with engine.begin() as conn:
        return await _insert_row(conn, req, version, params, status)


async def _insert_row(
    conn: AsyncConnection, req: BacktestRequest, version: str, params: dict[str, Any], status: str
) -> uuid.UUID:
    row = await conn.execute(
        _INSERT_RESULT,
        {
            "name": req.strategy,
            "version": version,
            "params": json.dumps(params),
            "start": req.start,
            "end": req.end,
            "filter": json.dumps(_filter_json(req)),
            "status": status,
            "started": datetime.now(UTC) if status == "running" else None,
        },
    )
    return uuid.UUID(str(row.scalar_one()))


def _filter_json(req: BacktestRequest) -> dict[str, Any]:
    config = req.model_dump(mode="json", include=set(CONFIG_KEYS))
    return {**req.market_filter.model_dump(), **config}


async def save_outcome(engine: AsyncEngine, result_id: uuid.UUID, out: BacktestOutcome) -> None:
    """Store the metrics, equity curve, feed gaps of the window and every execution (binary COPY)."""
    sim = out.sim
    async with engine.begin() as conn:
        driver: Any = await driver_in_transaction(conn)  # one unit: outcome, executions and the event
        gaps = await driver.fetch(
            "SELECT key, channel, market_ticker, cause, gap_start, gap_end, repaired_at, repair_method FROM feed_gaps "
            "WHERE gap_start < $2 AND coalesce(gap_end, 'infinity') >= $1 ORDER BY gap_start",
            out.request.start,
            out.request.end,
        )
        tickers = {m for m in (out.request.market_filter.tickers or [])}
        gap_rows = [
            {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(g).items()}
            for g in gaps
            if g["market_ticker"] is None or not tickers or g["market_ticker"] in tickers
        ]
        finished = await driver.fetchrow(
            "UPDATE backtest_results SET status = 'done', finished_at = now(), "
            "started_at = coalesce(started_at, now()), "
            "error = NULL, snapshots_processed = $2, num_trades = $3, total_pnl = $4, fees_paid = $5, "
            "metrics = $6::jsonb, equity_curve = $7::jsonb, feed_gaps = $8::jsonb, strategy_version = $9, "
            f"params = $10::jsonb WHERE id = $1 {backtest_events.RETURNING}",
            result_id,
            sim.snapshots,
            len(sim.executions),
            sim.total_pnl,
            sim.fees_paid,
            json.dumps(out.metrics),
            json.dumps(_equity_json(sim)),
            json.dumps({"count": len(gap_rows), "gaps": gap_rows}),
            out.strategy_version,
            json.dumps(out.params),
        )
        if finished is None:  # deleted while it ran (DELETE /backtests/{id}): the outcome has no home
            return
        await driver.execute("DELETE FROM backtest_executions WHERE backtest_id = $1", result_id)
        if sim.executions:
            tsv = _executions_tsv(result_id, sim.executions)
            await driver.copy_to_table("backtest_executions", source=io.BytesIO(tsv), columns=_EXEC_COLUMNS)
        await backtest_events.publish_finished(driver, finished)


_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _executions_tsv(result_id: uuid.UUID, executions: Sequence[Execution]) -> bytes:
    """The executions as COPY text (tab-separated, ``\\N`` for NULL): several times faster to send than records
    asyncpg encodes one value at a time, which matters at tens of thousands of executions."""
    times: dict[datetime, str] = {}

    def t(v: datetime | None) -> str:
        if v is None:
            return "\\N"
        text = times.get(v)
        if text is None:
            text = times[v] = v.isoformat()
        return text

    def x(v: object) -> str:
        return "\\N" if v is None else str(v).translate(_TSV_ESCAPES)

    rid = str(result_id)
    lines = [
        "\t".join((
            rid, x(e.ticker), x(e.side), str(e.size), t(e.entry_ts), str(e.entry_price), t(e.entry_snapshot_ts),
            x(e.entry_snapshot_source), t(e.exit_ts), x(e.exit_price), t(e.exit_snapshot_ts),
            x(e.exit_snapshot_source), x(e.exit_reason), str(e.fees), x(e.pnl),
            orjson.dumps(e.signal).decode().translate(_TSV_ESCAPES),  # several times json's speed
        ))
        for e in executions
    ]  # fmt: skip
    return ("\n".join(lines) + "\n").encode()


async def run_backtest(
    engine: AsyncEngine,
    request: BacktestRequest,
    *,
    dataset: Dataset | None = None,
    cache: ColumnarCache | None = None,
    progress: OnPhase = no_progress,
    keep_empty: bool = False,
) -> BacktestResultId:
    """Validate, run and persist one backtest now; returns the ``backtest_results.id`` (status ``done``).

    Raises :class:`InvalidInputError` for a request :func:`check_request` refuses, and :class:`NoDataError`
    (storing nothing) when it would run on no data (:func:`check_data`) — unless ``keep_empty``: then the result
    is stored with zero snapshots and ``metrics.message`` saying so. ``progress`` hears ``load``, ``simulate``
    and ``persist``.
    """
    strategy, params = check_request(request)
    if not keep_empty:
        if dataset is None:
            await check_data(engine, request)
        elif dataset.rows == 0:
            raise NoDataError("the dataset given holds no snapshots")
    result_id = await _insert_request(engine, request, strategy.version, params.model_dump(mode="json"), "running")
    try:
        out = await compute_backtest(engine, request, dataset=dataset, cache=cache, progress=progress)
        progress("persist", 0, len(out.sim.executions))
        await save_outcome(engine, result_id, out)
        progress("persist", len(out.sim.executions), len(out.sim.executions))
    except Exception as exc:
        await _mark_failed(engine, result_id, exc)
        raise
    return BacktestResultId(result_id)


async def enqueue_backtest(
    engine: AsyncEngine, request: BacktestRequest, *, max_queued: int | None = None, keep_empty: bool = False
) -> BacktestResultId:
    """Validate and store a ``queued`` backtest for :func:`execute_queued`; returns its id (for a 202 answer).

    Raises :class:`NoDataError` when the request selects no data (:func:`check_data`), unless ``keep_empty``.
    With ``max_queued``, raises :class:`BacktestQueueFullError` when that many rows are queued already (in the
    whole database: every replica's creates count). Concurrent creates take turns on an advisory lock, so the
    bound holds exactly."""
    strategy, params = check_request(request)
    if not keep_empty:
        await check_data(engine, request)
    async with engine.begin() as conn:
        if max_queued is not None:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUEUE_LOCK_KEY})
            queued = (
                await conn.execute(text("SELECT count(*) FROM backtest_results WHERE status = 'queued'"))
            ).scalar_one()
            if queued >= max_queued:
                raise BacktestQueueFullError(
                    f"the backtest queue is full ({queued} queued, limit {max_queued}); retry when some have run",
                    retry_after=QUEUE_RETRY_AFTER_SECONDS,
                )
        row_id = await _insert_row(conn, request, strategy.version, params.model_dump(mode="json"), "queued")
    return BacktestResultId(row_id)


async def _mark_failed(engine: AsyncEngine, result_id: uuid.UUID, exc: BaseException) -> None:
    async with engine.begin() as conn:
        driver: Any = await driver_in_transaction(conn)
        failed = await driver.fetchrow(
            f"UPDATE backtest_results SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1 "
            f"{backtest_events.RETURNING}",
            result_id,
            f"{type(exc).__name__}: {exc}"[:2000],
        )
        if failed is not None:
            await backtest_events.publish_finished(driver, failed)


async def execute_queued(
    engine: AsyncEngine, *, limit: int | None = None, cache: ColumnarCache | None = None
) -> list[BacktestResultId]:
    """Worker: claim ``queued`` rows one at a time (``FOR UPDATE SKIP LOCKED``), run each, store the outcome.

    Safe with many concurrent workers. Returns the ids it processed (done or failed); stops when no queued row
    is left or after ``limit`` rows.
    """
    done: list[BacktestResultId] = []
    while limit is None or len(done) < limit:
        async with engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT id, strategy_name, strategy_version, params, window_start, window_end, market_filter "
                        "FROM backtest_results WHERE status = 'queued' ORDER BY created_at "
                        "FOR UPDATE SKIP LOCKED LIMIT 1"
                    )
                )
            ).first()
            if row is None:
                break
            await conn.execute(
                text("UPDATE backtest_results SET status = 'running', started_at = now() WHERE id = :id"),
                {"id": row.id},
            )
        try:
            f = dict(row.market_filter or {})
            extra = {k: f.pop(k) for k in CONFIG_KEYS if k in f}
            req = BacktestRequest(
                strategy=row.strategy_name,
                strategy_version=row.strategy_version,
                params=row.params,
                start=row.window_start,
                end=row.window_end,
                market_filter=MarketFilter(**f),
                **extra,
            )
            out = await compute_backtest(engine, req, cache=cache)
            await save_outcome(engine, row.id, out)
        except Exception as exc:
            await _mark_failed(engine, row.id, exc)
        done.append(BacktestResultId(row.id))
    return done


# ------------------------------------------------------------------------------------------------------ reads
class BacktestResultView(BaseModel):
    id: uuid.UUID
    status: str
    strategy_name: str
    strategy_version: str
    params: dict[str, Any]
    window_start: datetime
    window_end: datetime
    market_filter: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    snapshots_processed: int | None
    num_trades: int | None
    total_pnl: Decimal | None
    fees_paid: Decimal | None
    metrics: dict[str, Any] | None
    equity_curve: dict[str, Any] | None
    feed_gaps: dict[str, Any] | None


async def get_result(engine: AsyncEngine, result_id: uuid.UUID | str) -> BacktestResultView:
    """One stored backtest (any status); raises :class:`NotFoundError`."""
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("SELECT * FROM backtest_results WHERE id = :id"), {"id": uuid.UUID(str(result_id))}
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFoundError(f"no backtest {result_id}")
    return BacktestResultView(**dict(row))


async def delete_result(engine: AsyncEngine, result_id: uuid.UUID) -> None:
    """Delete a backtest and its executions, whatever its status; raises :class:`NotFoundError`.

    A queued one is never run. A running one is cancelled: its worker simulates on, but finds no row to store
    the outcome in (:func:`save_outcome` checks), so nothing of it remains. The row lock orders this with a
    worker storing its outcome at the same moment: whichever commits second sees the other's work.
    """
    async with engine.begin() as conn:
        deleted = await conn.execute(
            text("DELETE FROM backtest_results WHERE id = :id RETURNING id"), {"id": result_id}
        )
        if deleted.first() is None:
            raise NotFoundError(f"no backtest {result_id}")


async def get_executions(engine: AsyncEngine, result_id: uuid.UUID | str) -> list[dict[str, Any]]:
    """The executions of a backtest in entry order (Decimals and datetimes as stored)."""
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    text("SELECT * FROM backtest_executions WHERE backtest_id = :id ORDER BY entry_ts, id"),
                    {"id": uuid.UUID(str(result_id))},
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


async def list_results(
    conn: AsyncConnection, *, strategy: str | None, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Stored backtests newest first (summary columns), keyset-paginated on (created_at, id)."""
    where: list[str] = []
    args: dict[str, Any] = {"limit": limit + 1}
    if strategy is not None:
        where.append("strategy_name = :strategy")
        args["strategy"] = strategy
    if cursor:
        args["c_created"], args["c_id"] = decode_cursor(cursor, "backtests", cursor_time, cursor_uuid)
        where.append("(created_at, id) < (:c_created, :c_id)")
    sql = (
        "SELECT id, status, strategy_name, strategy_version, window_start, window_end, created_at, finished_at, "
        "num_trades, total_pnl, (metrics ->> 'sharpe')::float8 AS sharpe, "
        "(metrics ->> 'max_drawdown')::float8 AS max_drawdown FROM backtest_results"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    rows = [dict(r) for r in (await conn.execute(text(sql), args)).mappings()]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor("backtests", last["created_at"].isoformat(), str(last["id"]))
    return rows[:limit], next_cursor


async def execution_page(
    conn: AsyncConnection, result_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The executions of a backtest in entry order, keyset-paginated on (entry_ts, id)."""
    args: dict[str, Any] = {"id": result_id, "limit": limit + 1}
    after = ""
    if cursor:
        args["c_ts"], args["c_id"] = decode_cursor(cursor, "executions", cursor_time, cursor_bigint)
        after = " AND (entry_ts, id) > (:c_ts, :c_id)"
    sql = f"SELECT * FROM backtest_executions WHERE backtest_id = :id{after} ORDER BY entry_ts, id LIMIT :limit"
    rows = [dict(r) for r in (await conn.execute(text(sql), args)).mappings()]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor("executions", last["entry_ts"].isoformat(), last["id"])
    return rows[:limit], next_cursor
