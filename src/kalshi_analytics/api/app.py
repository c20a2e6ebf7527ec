"""The API application: ``create_app(settings)`` factory, lifespan, middleware and routers.

The database engine is built in the lifespan (never at import) unless one is handed in (tests, ``up``), and
closed there. Routes live under ``/api/v1``; ``/metrics`` sits at the root where Prometheus looks, and ``/``
leads to the docs (:mod:`.root`).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

from kalshi_analytics import __version__
from kalshi_analytics.api import dashboard, health, root
from kalshi_analytics.backtests import endpoints as backtests
from kalshi_analytics.backtests.worker import BacktestWorker
from kalshi_analytics.config import Settings, load_settings
from kalshi_analytics.db import migrations
from kalshi_analytics.db.engine import create_engine, display_url, libpq_url, session_factory
from kalshi_analytics.db.outage import DatabaseGate
from kalshi_analytics.db.reads import create_read_pool
from kalshi_analytics.live import endpoints as live
from kalshi_analytics.logs import configure_logging, get_logger
from kalshi_analytics.markets import endpoints as markets
from kalshi_analytics.markets import stream
from kalshi_analytics.web.cache import AnswerFromCache, ResponseCache
from kalshi_analytics.web.deps import API_PREFIX
from kalshi_analytics.web.fast_lane import FastLane
from kalshi_analytics.web.head import HeadAsGet
from kalshi_analytics.web.limits import BodyLimit, StreamCounts, StreamSlots
from kalshi_analytics.web.problems import install_error_handlers
from kalshi_analytics.web.ratelimit import RateLimits, scope_client

log = get_logger(__name__)

API_POOL_SIZE = 10


async def _read_pools(primary: str, replica: str | None) -> tuple[asyncpg.Pool, ...]:
    """The primary's pool, then the replica's when ``DB_READ_URL`` is set: the market reads use the last one.

    The live stream keeps the primary's: it LISTENs (a standby cannot) and reads the journal rows a NOTIFY
    announced, which a lagging replica may not have yet. The response cache it refreshes is filled from those
    rows, so it stays consistent with the primary too; a cached market read may be as old as the replica's lag."""
    primary_pool = await create_read_pool(primary, API_POOL_SIZE)
    if not replica:
        return (primary_pool,)
    try:
        read_pool = await create_read_pool(libpq_url(replica), API_POOL_SIZE)
    except BaseException:
        await primary_pool.close()
        raise
    log.info("market_reads_from_replica", replica=display_url(replica))
    return primary_pool, read_pool


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    database_url: str | None = None,
) -> FastAPI:
    """Build the app. The engine comes from ``engine`` (kept open: the caller owns it), else is created in the
    lifespan from ``database_url``, ``DB_URL``, or the embedded server (and disposed at shutdown)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = engine is None
        if engine is not None:
            eng = engine
        else:
            url = database_url or settings.db_url
            if url is None:
                from kalshi_analytics.db.connect import choose_database

                url = (await choose_database(settings)).url
            eng = create_engine(url, pool_size=API_POOL_SIZE, pre_ping=False)
        sessions = session_factory(eng)
        pools = await _read_pools(libpq_url(eng.url), settings.db_read_url)  # the primary's first, reads' last
        hub = stream.StreamHub(
            libpq_url(eng.url),
            pools[0],
            max_spread=settings.api_max_spread,
            cache=app.state.response_cache,
            refresh_key=markets.latest_cache_key,
            resume_seconds=settings.stream_resume_seconds,
        )
        app.state.database_gate = gate = DatabaseGate(
            libpq_url(eng.url), retry_after=settings.api_retry_after_seconds, engines=(eng,), pools=pools
        )
        app.state.engine = eng
        app.state.sessions = sessions
        app.state.read_engine = eng.execution_options(isolation_level="AUTOCOMMIT")
        app.state.read_pool = pools[-1]
        app.state.stream_hub = hub
        app.state.migration_head = await asyncio.to_thread(migrations.head_revision)
        await hub.start()
        worker = BacktestWorker(eng, settings.api_backtest_poll_seconds) if settings.api_backtest_worker else None
        app.state.backtest_worker = worker
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await hub.stop()
            await gate.close()
            for pool in pools:
                await pool.close()
            if owned:
                await eng.dispose()

    # Swagger UI and ReDoc load their files from this package (fastapi-offline ships them), not from a CDN.
    app = FastAPIOffline(
        title="Kalshi Analytics API",
        version=__version__,
        summary="Recorded Kalshi markets: catalogue, prices, history, order books, trades, live stream, backtests, "
        "paper trading.",
        lifespan=lifespan,
        openapi_url=root.OPENAPI,
        docs_url=root.DOCS,
        redoc_url=root.REDOC,
        static_url=root.DOCS_ASSETS,
        swagger_ui_oauth2_redirect_url=f"{root.DOCS}/oauth2-redirect",
        # Metrics are Prometheus (/metrics). FastAPI's own OpenTelemetry hook would otherwise ask the global
        # providers on every request whether anyone listens: ~8 % of a cached answer's CPU, for nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.rate_limits = RateLimits.from_settings(settings)
    app.state.response_cache = ResponseCache(
        max_bytes=settings.api_cache_mb * 2**20,
        fresh_seconds=settings.api_cache_fresh_seconds,
        max_seconds=settings.api_cache_max_seconds,
        stale_seconds=settings.api_cache_stale_seconds,
    )
    app.state.streams = StreamCounts(settings.api_streams_per_client, settings.api_streams_total)
    app.state.metrics = health.ApiMetrics(cache=app.state.response_cache, streams=app.state.streams)
    install_error_handlers(app)

    for router in (
        root.router,
        health.router,
        markets.router,
        backtests.router,
        backtests.strategies_router,
        live.router,
        live.performance_router,
        stream.router,
        health.metrics_router,
    ):
        app.include_router(router)
    app.state.dashboard_dir = folder = dashboard.dashboard_dir(settings)
    if folder is not None:  # last: its catch-all takes only what no route above answers
        app.include_router(dashboard.router_for(folder))

    _install_middleware(app, settings)
    return app


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """Ours, innermost first (each added one wraps the ones before): the fast lane of the hottest reads, stream
    slots, answers from the cache, the body limit, then CORS and metrics around everything they send, and HEAD
    served as GET outermost."""

    def allow(charges: tuple[str, ...], scope: Scope) -> bool:
        limits: RateLimits = app.state.rate_limits  # looked up per request, like the rate-limit dependency
        return limits.allow(charges, scope_client(scope))

    if settings.api_fast_lane:
        app.add_middleware(FastLane, routes=markets.FAST_ROUTES, allow=allow, fastapi_app=app)
    app.add_middleware(StreamSlots, paths={f"{API_PREFIX}/stream"}, counts=app.state.streams)
    app.add_middleware(AnswerFromCache, cache=app.state.response_cache, allow=allow)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Retry-After", "X-Cache", "Age"],
        max_age=600,
    )
    app.add_middleware(health.MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(HeadAsGet)  # outermost: everything inside sees the GET it answers


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (multi-worker): settings from the environment."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    # What exists now — modules, the app, its schemas — lives as long as the worker: take it out of the cycle
    # collector's reach, or every full collection walks it again (measured: ~110 ms pauses under load).
    gc.collect()
    gc.freeze()
    return app


async def serve_api(
    settings: Settings,
    database: AsyncEngine | str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Run the API in this process and event loop until cancelled (for ``up``, next to the recorder).

    ``database`` is an engine the caller keeps owning, or a URL; None = ``DB_URL``/embedded. Cancelling the
    task shuts the server down gracefully (lifespan shutdown included) before the cancellation propagates.
    """
    import uvicorn

    from kalshi_analytics.api.server import GRACE_SECONDS, EmbeddedApiServer
    from kalshi_analytics.web.server import proxy_options

    if isinstance(database, AsyncEngine):
        app = create_app(settings, engine=database)
    else:
        app = create_app(settings, database_url=database)
    config = uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=settings.api_port if port is None else port,
        access_log=False,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=GRACE_SECONDS,
        **proxy_options(settings),
    )
    server = EmbeddedApiServer(config)
    task = asyncio.create_task(server.serve(), name="api-server")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise
