"""The backtests API (create → 202 + background run, list, detail, executions, equity) and the strategies list."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import text

from kalshi_analytics.backtests import service
from kalshi_analytics.backtests.errors import BacktestInputError, BacktestNotFoundError
from kalshi_analytics.backtests.schemas import (
    BacktestCreate,
    BacktestCreated,
    BacktestDetail,
    BacktestLinks,
    BacktestPage,
    BacktestSummary,
    EquityCurve,
    ExecutionPage,
    StrategyInfo,
)
from kalshi_analytics.markets.endpoints import NO_NUL, model_response
from kalshi_analytics.markets.service import decode_cursor, encode_cursor
from kalshi_analytics.strategies import registry
from kalshi_analytics.web.deps import API_PREFIX, EngineDep, ReadSessionDep
from kalshi_analytics.web.problems import InvalidParameterError, NotFoundError, problem_responses
from kalshi_analytics.web.ratelimit import rate_limit

BASE = f"{API_PREFIX}/backtests"
#: Windows outside these bounds are refused (422): no recorded data can lie there, and extreme years break
#: timezone arithmetic in the driver.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
CONFIG_KEYS = ("initial_capital", "max_position", "contract_step", "vectorised")

router = APIRouter(prefix=BASE, tags=["backtests"], responses=problem_responses(404, 422, 429, 500))
strategies_router = APIRouter(
    prefix=f"{API_PREFIX}/strategies", tags=["strategies"], responses=problem_responses(404, 422, 429, 500)
)
read_limited = [Depends(rate_limit("read"))]

BacktestId = Annotated[uuid.UUID, Path(description="backtest id (UUID)")]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size (at most 1000)")]
Cursor = Annotated[str | None, Query(max_length=2000, pattern=NO_NUL, description="`next_cursor` of the previous page")]


def links(backtest_id: uuid.UUID) -> BacktestLinks:
    return BacktestLinks(
        self=f"{BASE}/{backtest_id}",
        executions=f"{BASE}/{backtest_id}/executions",
        equity=f"{BASE}/{backtest_id}/equity",
    )


def _invalid(errors: list[dict[str, str]]) -> InvalidParameterError:
    exc = InvalidParameterError(errors[0]["field"], errors[0]["message"])
    exc.errors = errors
    exc.detail = "invalid request: " + ", ".join(dict.fromkeys(e["field"] for e in errors))
    return exc


def check_request(body: BacktestCreate) -> service.BacktestRequest:
    """Everything :func:`service.enqueue_backtest` would refuse, reported against the offending field."""
    for name in ("start", "end"):
        ts: datetime = getattr(body, name)
        if not EARLIEST <= ts <= LATEST:
            raise InvalidParameterError(f"body.{name}", f"must lie between {EARLIEST.year} and {LATEST.year}")
    if body.end <= body.start:
        raise InvalidParameterError("body.end", f"end ({body.end.isoformat()}) must be after start")
    try:
        strategy = registry.get_strategy(body.strategy, body.strategy_version)
    except registry.UnknownStrategyError as exc:
        field = "body.strategy_version" if body.strategy_version is not None else "body.strategy"
        raise InvalidParameterError(field, str(exc)) from None
    try:
        strategy.parse_params(body.params)
    except ValidationError as exc:
        raise _invalid(
            [
                {"field": ".".join(["body", "params", *(str(p) for p in e["loc"])]), "message": e["msg"]}
                for e in exc.errors()
            ]
        ) from None
    for key, value in body.model_dump(mode="json").items():  # stored as jsonb: no NUL, no NaN/Infinity
        try:
            dumped = json.dumps(value, allow_nan=False)
        except ValueError:
            raise InvalidParameterError(f"body.{key}", "NaN and Infinity are not allowed") from None
        if "\\u0000" in dumped:
            raise InvalidParameterError(f"body.{key}", "text must not contain NUL characters")
    return service.BacktestRequest.model_validate(body.model_dump())


@router.post(
    "",
    operation_id="createBacktest",
    summary="Queue a backtest (validated now, run in the background); 202 with its id and links.",
    status_code=202,
    response_model=BacktestCreated,
    dependencies=[Depends(rate_limit("expensive"))],
)
async def create_backtest(body: BacktestCreate, request: Request, engine: EngineDep) -> Response:
    req = check_request(body)
    try:
        backtest_id = await service.enqueue_backtest(engine, req)
    except BacktestInputError as exc:  # checked above; kept for anything the service adds later
        raise InvalidParameterError(f"body.{exc.field or 'params'}", str(exc)) from None
    worker = getattr(request.app.state, "backtest_worker", None)
    if worker is not None:
        worker.wake()
    created = BacktestCreated(id=backtest_id, status="queued", links=links(backtest_id))
    response = model_response(created)
    response.status_code = 202
    response.headers["Location"] = created.links.self
    return response


@router.get(
    "",
    operation_id="listBacktests",
    summary="List backtests, newest first (keyset pagination), optionally of one strategy.",
    response_model=BacktestPage,
    dependencies=read_limited,
)
async def list_backtests(
    *,
    session: ReadSessionDep,
    strategy: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="strategy name")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    where: list[str] = []
    args: dict[str, Any] = {"limit": limit + 1}
    if strategy is not None:
        where.append("strategy_name = :strategy")
        args["strategy"] = strategy
    if cursor:
        _, created, last_id = decode_cursor(cursor, 3, "backtests")
        try:
            args["c_created"] = datetime.fromisoformat(str(created))
            args["c_id"] = uuid.UUID(str(last_id))
        except ValueError:
            raise InvalidParameterError("query.cursor", "corrupt cursor") from None
        if args["c_created"].tzinfo is None:
            raise InvalidParameterError("query.cursor", "corrupt cursor")
        where.append("(created_at, id) < (:c_created, :c_id)")
    sql = (
        "SELECT id, status, strategy_name, strategy_version, window_start, window_end, created_at, finished_at, "
        "num_trades, total_pnl FROM backtest_results"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    rows = (await session.execute(text(sql), args)).mappings().all()
    items = [
        BacktestSummary(
            id=r["id"],
            status=r["status"],
            strategy={"name": r["strategy_name"], "version": r["strategy_version"]},
            window={"start": r["window_start"], "end": r["window_end"]},
            created_at=r["created_at"],
            finished_at=r["finished_at"],
            num_trades=r["num_trades"],
            total_pnl=r["total_pnl"],
            links=links(r["id"]),
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor("backtests", last["created_at"].isoformat(), str(last["id"]))
    return model_response(BacktestPage(items=items, next_cursor=next_cursor))


async def _result(engine: Any, backtest_id: uuid.UUID) -> service.BacktestResultView:
    try:
        return await service.get_result(engine, backtest_id)
    except BacktestNotFoundError:
        raise NotFoundError(f"no backtest {backtest_id}") from None


@router.get(
    "/{backtest_id}",
    operation_id="getBacktest",
    summary="One backtest: status, strategy, params, window, filter, metrics, error, feed gaps.",
    response_model=BacktestDetail,
    dependencies=read_limited,
)
async def get_backtest(backtest_id: BacktestId, engine: EngineDep) -> Response:
    r = await _result(engine, backtest_id)
    f = dict(r.market_filter or {})
    config = {k: f.pop(k) for k in CONFIG_KEYS if k in f}
    detail = BacktestDetail(
        id=r.id,
        status=r.status,
        strategy={"name": r.strategy_name, "version": r.strategy_version},
        params=r.params,
        window={"start": r.window_start, "end": r.window_end},
        market_filter=f,
        config=config,
        created_at=r.created_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        error=r.error,
        snapshots_processed=r.snapshots_processed,
        num_trades=r.num_trades,
        total_pnl=r.total_pnl,
        fees_paid=r.fees_paid,
        metrics=r.metrics,
        feed_gaps=r.feed_gaps,
        links=links(r.id),
    )
    return model_response(detail)


@router.get(
    "/{backtest_id}/executions",
    operation_id="listBacktestExecutions",
    summary="The executions (fills and their exits) of a backtest in entry order, keyset-paginated.",
    response_model=ExecutionPage,
    dependencies=read_limited,
)
async def list_executions(
    backtest_id: BacktestId, engine: EngineDep, session: ReadSessionDep, limit: Limit = 1000, cursor: Cursor = None
) -> Response:
    await _result(engine, backtest_id)
    args: dict[str, Any] = {"id": backtest_id, "limit": limit + 1}
    after = ""
    if cursor:
        _, entry_ts, last_id = decode_cursor(cursor, 3, "executions")
        try:
            args["c_ts"] = datetime.fromisoformat(str(entry_ts))
            args["c_id"] = int(last_id)
        except (ValueError, TypeError):
            raise InvalidParameterError("query.cursor", "corrupt cursor") from None
        if args["c_ts"].tzinfo is None:
            raise InvalidParameterError("query.cursor", "corrupt cursor")
        after = " AND (entry_ts, id) > (:c_ts, :c_id)"
    rows = (
        (
            await session.execute(
                text(
                    "SELECT * FROM backtest_executions WHERE backtest_id = :id"
                    + after
                    + " ORDER BY entry_ts, id LIMIT :limit"
                ),
                args,
            )
        )
        .mappings()
        .all()
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor("executions", last["entry_ts"].isoformat(), last["id"])
    page = ExecutionPage.model_validate(
        {"backtest_id": backtest_id, "items": [dict(r) for r in rows[:limit]], "next_cursor": next_cursor}
    )
    return model_response(page)


@router.get(
    "/{backtest_id}/equity",
    operation_id="getBacktestEquity",
    summary="The equity curve of a backtest (empty until it is done).",
    response_model=EquityCurve,
    dependencies=read_limited,
)
async def get_equity(backtest_id: BacktestId, engine: EngineDep) -> Response:
    r = await _result(engine, backtest_id)
    curve = r.equity_curve or {}
    return model_response(
        EquityCurve.model_validate(
            {
                "backtest_id": r.id,
                "status": r.status,
                "ts": curve.get("ts", []),
                "equity": curve.get("equity", []),
            }
        )
    )


# ------------------------------------------------------------------------------------------------ strategies
@strategies_router.get(
    "",
    operation_id="listStrategies",
    summary="Every available strategy: name, version, description and parameter JSON schema.",
    response_model=list[StrategyInfo],
    dependencies=read_limited,
)
async def list_strategies() -> list[StrategyInfo]:
    return [StrategyInfo.model_validate(s) for s in registry.list_strategies()]


@strategies_router.get(
    "/{name}",
    operation_id="getStrategy",
    summary="One strategy (its newest version unless `version` is given) with its parameter JSON schema.",
    response_model=StrategyInfo,
    dependencies=read_limited,
)
async def get_strategy(
    name: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)],
    version: Annotated[str | None, Query(max_length=50, pattern=NO_NUL)] = None,
) -> StrategyInfo:
    try:
        strategy = registry.get_strategy(name, version)
    except registry.UnknownStrategyError as exc:
        raise NotFoundError(str(exc)) from None
    (info,) = [s for s in registry.list_strategies() if (s["name"], s["version"]) == (strategy.name, strategy.version)]
    return StrategyInfo.model_validate(info)
