"""Liveness, readiness, recorder status and Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalshi_analytics.db.status import current_revision
from kalshi_analytics.recorder import status as recorder
from kalshi_analytics.web.cache import ResponseCache
from kalshi_analytics.web.deps import API_PREFIX, ReadSessionDep
from kalshi_analytics.web.limits import StreamCounts
from kalshi_analytics.web.problems import problem_response, problem_responses
from kalshi_analytics.web.ratelimit import rate_limit

READY_CHECK_TIMEOUT_SECONDS = 3.0

router = APIRouter(prefix=API_PREFIX, tags=["health"])


class Liveness(BaseModel):
    status: str = "ok"


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: str = Field(description="ready | not_ready")
    checks: dict[str, Check]


@router.get("/health", operation_id="getHealth", summary="Liveness: the process answers.", response_model=Liveness)
async def health() -> Liveness:
    return Liveness()


async def readiness_checks(request: Request) -> dict[str, Check]:
    engine = request.app.state.engine
    settings = request.app.state.settings
    head: str | None = request.app.state.migration_head
    checks: dict[str, Check] = {}
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_SECONDS), engine.connect() as conn:
            checks["database"] = Check(ok=True, detail="reachable")
            current = await current_revision(conn)
            at_head = current == head
            checks["migrations"] = Check(
                ok=at_head, detail=f"at head {head}" if at_head else f"at {current or 'none'}, head is {head}"
            )
            beat = await recorder.leader_heartbeat(conn)
            checks["recorder"] = _recorder_check(beat, settings.api_ready_heartbeat_max_age_seconds)
    except Exception as exc:
        checks["database"] = Check(ok=False, detail=f"database unreachable: {_reason(exc)}")
    if settings.db_read_url:
        checks["read_replica"] = await _replica_check(request.app.state.read_pool)
    return checks


def _reason(exc: BaseException) -> str:
    return "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__


#: How long ago the replica replayed its last transaction (NULL on a server that is not a standby).
_REPLAYED_SQL = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
)


async def _replica_check(pool: asyncpg.Pool) -> Check:
    """The replica the market reads use (``DB_READ_URL``): reachable, and how far its replay is behind."""
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT_SECONDS), pool.acquire() as conn:
            replayed = await conn.fetchval(_REPLAYED_SQL)
    except Exception as exc:
        return Check(ok=False, detail=f"read replica unreachable: {_reason(exc)}")
    if replayed is None:
        return Check(ok=True, detail="reachable (not a standby)")
    return Check(ok=True, detail=f"reachable; last transaction replayed {float(replayed):.1f} s ago")


def _recorder_check(beat: recorder.LeaderBeat | None, limit: float) -> Check:
    if beat is None:
        return Check(ok=False, detail="no leader recorder heartbeat recorded")
    age = f"heartbeat {beat.age_seconds:.1f} s ago (limit {limit:g} s)"
    if beat.db_down_since is not None:
        return Check(
            ok=False,
            detail=f"leader {beat.instance_id} holding {beat.held} items during a database outage "
            f"(since {beat.db_down_since}); {age}",
        )
    if beat.age_seconds > limit:
        held = f"; it held {beat.held} items at that beat" if beat.held else ""
        return Check(ok=False, detail=f"leader {beat.instance_id} {age}{held}")
    return Check(ok=True, detail=f"leader {beat.instance_id} {age}")


@router.get(
    "/ready",
    operation_id="getReadiness",
    summary="Readiness: database (and read replica, if any) reachable, migrations at head, leader recorder "
    "heartbeat fresh.",
    response_model=Readiness,
    responses=problem_responses(503),
)
async def ready(request: Request) -> Response:
    checks = await readiness_checks(request)
    failed = [f"{name}: {c.detail}" for name, c in checks.items() if not c.ok]
    if failed:
        return problem_response(
            request,
            503,
            detail="not ready — " + "; ".join(failed),
            extra={"checks": {k: v.model_dump() for k, v in checks.items()}},
        )
    return JSONResponse(Readiness(status="ready", checks=checks).model_dump())


# ------------------------------------------------------------------------------------------- recorder status
@router.get(
    "/recorder/status",
    operation_id="getRecorderStatus",
    summary="Recorder instances and heartbeats, the leader, its lag and the most recent feed gaps.",
    response_model=recorder.RecorderStatus,
    dependencies=[Depends(rate_limit("read"))],
    responses=problem_responses(429),
)
async def recorder_status(session: ReadSessionDep) -> recorder.RecorderStatus:
    return await recorder.recorder_status(session)


# ---------------------------------------------------------------------------------------------------- metrics
class CacheCollector(Collector):
    """The response cache's counters and size, read when Prometheus scrapes."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        c = self.cache
        yield CounterMetricFamily("kalshi_api_cache_hits", "answers served from the response cache", c.hits)
        yield CounterMetricFamily("kalshi_api_cache_misses", "answers built from the database", c.misses)
        yield CounterMetricFamily(
            "kalshi_api_cache_invalidations", "recorder commit notifications applied to the cache", c.invalidations
        )
        yield CounterMetricFamily(
            "kalshi_api_cache_refreshes", "cached answers re-read ahead of requests after a commit", c.refreshes
        )
        yield CounterMetricFamily(
            "kalshi_api_cache_stale_answers", "cached answers sent while the database was unreachable", c.stale_answers
        )
        yield GaugeMetricFamily("kalshi_api_cache_entries", "answers held in the response cache", len(c))
        yield GaugeMetricFamily("kalshi_api_cache_bytes", "bytes held in the response cache", c.size_bytes)


class StreamsCollector(Collector):
    """The SSE streams open now, read when Prometheus scrapes."""

    def __init__(self, streams: StreamCounts) -> None:
        self.streams = streams

    def collect(self) -> Iterator[Metric]:
        s = self.streams
        yield GaugeMetricFamily("kalshi_api_streams_open", "SSE streams open in this process", s.open.total())
        yield GaugeMetricFamily("kalshi_api_stream_clients", "client addresses with an SSE stream open", len(s.open))


class ApiMetrics:
    """API request metrics in a private registry (one per app, so tests and several apps never collide)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        cache: ResponseCache | None = None,
        streams: StreamCounts | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if cache is not None:
            self.registry.register(CacheCollector(cache))
        if streams is not None:
            self.registry.register(StreamsCollector(streams))
        self.requests = Counter(
            "kalshi_api_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "kalshi_api_request_duration_seconds",
            "HTTP request duration (to the end of the response headers for streams)",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        # The labelled children, looked up once each: ``labels()`` costs ~5 µs a call, twice a request.
        self._observed: dict[tuple[str, str], Histogram] = {}
        self._counted: dict[tuple[str, str, int], Counter] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request answered (its headers sent) after ``seconds``."""
        timer = self._observed.get((method, route))
        if timer is None:
            timer = self._observed[method, route] = self.latency.labels(method, route)
        counter = self._counted.get((method, route, status))
        if counter is None:
            counter = self._counted[method, route, status] = self.requests.labels(method, route, str(status))
        timer.observe(seconds)
        counter.inc()


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware overhead): counts and times each request by its route template."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                path = getattr(scope.get("route"), "path", None) or "unmatched"
                self.metrics.observe(scope["method"], path, status, time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, send_wrapper)


metrics_router = APIRouter(tags=["health"])


@metrics_router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics of this API process.",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    m: ApiMetrics = request.app.state.metrics
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
