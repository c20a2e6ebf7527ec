"""The backtests API (create → 202 + background run, list, detail, executions, equity) and the strategies list."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from kalshi_analytics.backtests import service
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
from kalshi_analytics.errors import NotFoundError
from kalshi_analytics.strategies import registry
from kalshi_analytics.web.deps import API_PREFIX, EngineDep, ReadSessionDep
from kalshi_analytics.web.params import NO_NUL, Cursor, Limit
from kalshi_analytics.web.problems import inputs_from, problem_responses
from kalshi_analytics.web.ratelimit import ChargedBeforeBody, rate_limit
from kalshi_analytics.web.responses import model_response
from kalshi_analytics.web.strict_json import StrictJsonRoute

BASE = f"{API_PREFIX}/backtests"
CONFIG_KEYS = service.CONFIG_KEYS


class BacktestRoute(ChargedBeforeBody, StrictJsonRoute):
    """Creates carry a body: their rate limit is charged before it is read, and the body is read as strict JSON."""


router = APIRouter(
    prefix=BASE,
    tags=["backtests"],
    responses=problem_responses(404, 422, 429, 500),
    route_class=BacktestRoute,
)
strategies_router = APIRouter(
    prefix=f"{API_PREFIX}/strategies", tags=["strategies"], responses=problem_responses(404, 422, 429, 500)
)
read_limited = [Depends(rate_limit("read"))]

BacktestId = Annotated[uuid.UUID, Path(description="backtest id (UUID)")]


def links(backtest_id: uuid.UUID) -> BacktestLinks:
    return BacktestLinks(
        self=f"{BASE}/{backtest_id}",
        executions=f"{BASE}/{backtest_id}/executions",
        equity=f"{BASE}/{backtest_id}/equity",
    )


@router.post(
    "",
    operation_id="createBacktest",
    summary="Queue a backtest (validated now, run in the background); 202 with its id and links, or 422 of type "
    "`no-data` when it selects no data (unless `keep_empty`).",
    status_code=202,
    response_model=BacktestCreated,
    dependencies=[Depends(rate_limit("expensive"))],
    responses=problem_responses(413, 503),
)
async def create_backtest(body: BacktestCreate, request: Request, engine: EngineDep) -> Response:
    max_queued: int = request.app.state.settings.api_backtest_queue_max
    with inputs_from("body"):
        backtest_id = await service.enqueue_backtest(
            engine, body.to_request(), max_queued=max_queued, keep_empty=body.keep_empty
        )
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
    with inputs_from("query"):
        rows, next_cursor = await service.list_results(session, strategy=strategy, limit=limit, cursor=cursor)
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
            sharpe=r["sharpe"],
            max_drawdown=r["max_drawdown"],
            links=links(r["id"]),
        )
        for r in rows
    ]
    return model_response(BacktestPage(items=items, next_cursor=next_cursor))


@router.get(
    "/{backtest_id}",
    operation_id="getBacktest",
    summary="One backtest: status, strategy, params, window, filter, metrics, error, feed gaps.",
    response_model=BacktestDetail,
    dependencies=read_limited,
)
async def get_backtest(backtest_id: BacktestId, engine: EngineDep) -> Response:
    r = await service.get_result(engine, backtest_id)
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


@router.delete(
    "/{backtest_id}",
    operation_id="deleteBacktest",
    summary="Delete a backtest and its executions; a queued or running one is cancelled (its outcome discarded).",
    status_code=204,
    response_class=Response,
    dependencies=read_limited,
)
async def delete_backtest(backtest_id: BacktestId, engine: EngineDep) -> Response:
    await service.delete_result(engine, backtest_id)
    return Response(status_code=204)


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
    await service.get_result(engine, backtest_id)  # an unknown id is a 404, not an empty page
    with inputs_from("query"):
        rows, next_cursor = await service.execution_page(session, backtest_id, limit=limit, cursor=cursor)
    page = ExecutionPage.model_validate({"backtest_id": backtest_id, "items": rows, "next_cursor": next_cursor})
    return model_response(page)


@router.get(
    "/{backtest_id}/equity",
    operation_id="getBacktestEquity",
    summary="The equity curve of a backtest (empty until it is done).",
    response_model=EquityCurve,
    dependencies=read_limited,
)
async def get_equity(backtest_id: BacktestId, engine: EngineDep) -> Response:
    r = await service.get_result(engine, backtest_id)
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
    except registry.UnknownStrategyError as exc:  # a path that names nothing: 404, not a bad input
        raise NotFoundError(str(exc)) from None
    (info,) = [s for s in registry.list_strategies() if (s["name"], s["version"]) == (strategy.name, strategy.version)]
    return StrategyInfo.model_validate(info)
