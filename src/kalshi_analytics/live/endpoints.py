"""The paper trading API: sessions (create → 201, list, detail, stop), what they hold and did (fills, positions,
equity, events), the divergence report, and the seed's ``GET /api/v1/strategies/{name}/performance``.

A session is advanced by the live runner (``kalshi-analytics live runner``, also started by ``up``), never by
the API: a create stores a running session, which the runner picks up at its next step.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy import URL

from kalshi_analytics.db.engine import create_engine
from kalshi_analytics.errors import NotFoundError
from kalshi_analytics.live import service
from kalshi_analytics.live.compare import compare_session
from kalshi_analytics.live.schemas import (
    CompareReport,
    EquityPoint,
    FillPage,
    PaperSessionCreate,
    PaperSessionLive,
    PaperSessionPage,
    PaperSessionView,
    PositionView,
    SessionEventView,
    StrategyPerformance,
)
from kalshi_analytics.strategies import registry
from kalshi_analytics.web.deps import API_PREFIX, EngineDep
from kalshi_analytics.web.params import NO_NUL, query_time, time_query
from kalshi_analytics.web.problems import inputs_from, problem_responses
from kalshi_analytics.web.ratelimit import ChargedBeforeBody, rate_limit
from kalshi_analytics.web.responses import model_response
from kalshi_analytics.web.strict_json import StrictJsonRoute

BASE = f"{API_PREFIX}/paper-sessions"


class PaperRoute(ChargedBeforeBody, StrictJsonRoute):
    """Creates carry a body: their rate limit is charged before it is read, and the body is read as strict JSON."""


router = APIRouter(
    prefix=BASE,
    tags=["paper trading"],
    responses=problem_responses(404, 422, 429, 500),
    route_class=PaperRoute,
)
performance_router = APIRouter(
    prefix=f"{API_PREFIX}/strategies", tags=["strategies"], responses=problem_responses(404, 422, 429, 500)
)
read_limited = [Depends(rate_limit("read"))]

SessionId = Annotated[uuid.UUID, Path(description="paper session id (UUID)")]


@router.post(
    "",
    operation_id="createPaperSession",
    summary="Start a paper session: a strategy paper-trades the selected markets from now on; 201 with the "
    "session and its `Location` (422 naming the field for a bad strategy, parameter, selection or capital).",
    status_code=201,
    response_model=PaperSessionView,
    dependencies=[Depends(rate_limit("expensive"))],
    responses=problem_responses(413, 503),
)
async def create_paper_session(body: PaperSessionCreate, engine: EngineDep) -> Response:
    with inputs_from("body"):
        session_id = await service.create_session(engine, body)
    view = await service.get_session(engine, session_id)
    response = model_response(view)
    response.status_code = 201
    response.headers["Location"] = view.links.self
    return response


@router.get(
    "",
    operation_id="listPaperSessions",
    summary="Paper sessions, newest first, optionally of one status or strategy.",
    response_model=PaperSessionPage,
    dependencies=read_limited,
)
async def list_paper_sessions(
    engine: EngineDep,
    status: Annotated[Literal["running", "stopped", "failed"] | None, Query(description="session status")] = None,
    strategy: Annotated[str | None, Query(max_length=200, pattern=NO_NUL, description="strategy name")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many (at most 1000)")] = 100,
) -> Response:
    items = await service.list_sessions(engine, status=status, strategy=strategy, limit=limit)
    return model_response(PaperSessionPage(items=items))


@router.get(
    "/{session_id}",
    operation_id="getPaperSession",
    summary="One paper session: strategy, parameters, markets, account (cash, equity, realised and unrealised "
    "P&L, fees), status and how far the runner has taken it.",
    response_model=PaperSessionView,
    dependencies=read_limited,
)
async def get_paper_session(session_id: SessionId, engine: EngineDep) -> Response:
    return model_response(await service.get_session(engine, session_id))


@router.post(
    "/{session_id}/stop",
    operation_id="stopPaperSession",
    summary="Stop a running paper session (it keeps what it holds and stays readable); 409 when it is not running.",
    response_model=PaperSessionView,
    dependencies=read_limited,
    responses=problem_responses(409),
)
async def stop_paper_session(session_id: SessionId, engine: EngineDep) -> Response:
    await service.stop_session(engine, session_id)
    return model_response(await service.get_session(engine, session_id))


@router.get(
    "/{session_id}/fills",
    operation_id="listPaperSessionFills",
    summary="A paper session's fills in the order they were committed; page on with `after` = `next_after`.",
    response_model=FillPage,
    dependencies=read_limited,
)
async def list_paper_fills(
    session_id: SessionId,
    engine: EngineDep,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="fills after this fill id (`next_after`)")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size (at most 1000)")] = 1000,
) -> Response:
    fills = await service.get_fills(engine, session_id, after=after, limit=limit)
    next_after = fills[-1].id if len(fills) == limit else None
    return model_response(FillPage(session_id=session_id, items=fills, next_after=next_after))


@router.get(
    "/{session_id}/positions",
    operation_id="listPaperSessionPositions",
    summary="A paper session's positions with their average price, mark (the last bid of their side) and "
    "unrealised P&L; closed ones too with `open_only=false`.",
    response_model=list[PositionView],
    dependencies=read_limited,
)
async def list_paper_positions(
    session_id: SessionId,
    engine: EngineDep,
    open_only: Annotated[bool, Query(description="only positions holding contracts")] = True,
) -> list[PositionView]:
    return await service.get_positions(engine, session_id, open_only=open_only)


@router.get(
    "/{session_id}/equity",
    operation_id="getPaperSessionEquity",
    summary="A paper session's equity points (cash + positions at their marks), oldest first.",
    response_model=list[EquityPoint],
    dependencies=read_limited,
)
async def get_paper_equity(session_id: SessionId, engine: EngineDep) -> list[EquityPoint]:
    return await service.get_equity(engine, session_id)


@router.get(
    "/{session_id}/events",
    operation_id="listPaperSessionEvents",
    summary="What happened to a paper session: started, stopped, runner downtime, stale markets, settlements.",
    response_model=list[SessionEventView],
    dependencies=read_limited,
)
async def list_paper_events(session_id: SessionId, engine: EngineDep) -> list[SessionEventView]:
    return await service.get_events(engine, session_id)


@router.get(
    "/{session_id}/live",
    operation_id="getPaperSessionLive",
    summary="A session page's state in one database snapshot — the session, open positions, the latest fills, "
    "equity and events — with `as_of_event_id`: resume `GET /api/v1/stream?kinds=paper_fill,paper_position,"
    "paper_equity,paper_session&last_event_id=…` from it to receive exactly what changed since.",
    response_model=PaperSessionLive,
    dependencies=read_limited,
)
async def get_paper_live(
    session_id: SessionId,
    engine: EngineDep,
    fills_limit: Annotated[int, Query(ge=1, le=1000, description="at most this many of the latest fills")] = 500,
) -> Response:
    return model_response(await service.live_state(engine, session_id, fills_limit=fills_limit))


def _compare_in_thread(url: URL, session_id: uuid.UUID) -> CompareReport:
    """The report on this thread's own event loop and engine: the replay is synchronous CPU work, and the API's
    loop keeps answering meanwhile (as the backtest worker does)."""

    async def run() -> CompareReport:
        engine = create_engine(url, pool_size=2)
        try:
            return await compare_session(engine, session_id)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@router.get(
    "/{session_id}/compare",
    operation_id="comparePaperSession",
    summary="The divergence report: the session's window replayed as a backtest (same strategy version, "
    "parameters, fill model and data); every difference in fills and P&L, each explained. Empty on a clean run. "
    "Runs a backtest: counts as expensive.",
    response_model=CompareReport,
    dependencies=[Depends(rate_limit("expensive"))],
)
async def compare_paper_session(session_id: SessionId, engine: EngineDep) -> Response:
    await service.get_session(engine, session_id)  # an unknown id is a 404 before any thread starts
    report = await asyncio.to_thread(_compare_in_thread, engine.url, session_id)
    return model_response(report)


@performance_router.get(
    "/{name}/performance",
    operation_id="getStrategyPerformance",
    summary="Live performance of a strategy across its running paper sessions (the seed's `total_pnl`, "
    "`unrealized_pnl`, `sharpe_ratio`, `positions`, plus realised P&L, max drawdown, exposure), per session, "
    "and its latest backtest Sharpe against the 0.5 gate.",
    response_model=StrategyPerformance,
    dependencies=read_limited,
)
async def get_strategy_performance(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)],
    engine: EngineDep,
    gate_start: Annotated[
        str | None, time_query("the gate's backtest: the latest whose window starts at or after this")
    ] = None,
    gate_end: Annotated[str | None, time_query("the gate's backtest: the latest whose window ends by this")] = None,
) -> Response:
    try:
        registry.get_strategy(name)
    except registry.UnknownStrategyError as exc:  # a path that names nothing: 404, as `getStrategy` answers
        raise NotFoundError(str(exc)) from None
    window = query_time(request, "gate_start", gate_start), query_time(request, "gate_end", gate_end)
    return model_response(await service.strategy_performance(engine, name, gate_window=window))
