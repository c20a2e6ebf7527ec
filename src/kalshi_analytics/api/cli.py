"""``kalshi-analytics api``: serve the HTTP API with uvicorn."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer

from kalshi_analytics.config import SettingsError, load_settings
from kalshi_analytics.errors import ConflictError
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.web.server import ensure_port_free, proxy_options
from kalshi_analytics.web.workers import reuse_port_supported, serve_workers

APP_FACTORY = "kalshi_analytics.api.app:app_from_env"


def api(
    host: Annotated[str | None, typer.Option(help="Listen address (default API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default API_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="uvicorn worker processes (default API_WORKERS).")] = None,
) -> None:
    """Serve the API (/api/v1, /metrics) with uvicorn; access logging off (it costs ~30 % of throughput)."""
    import uvicorn

    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    if not settings.db_url:
        # Start (or reuse) the embedded server once here, so every worker connects to the same one.
        from kalshi_analytics.db.connect import choose_database

        os.environ["DB_URL"] = asyncio.run(choose_database(settings)).url
    from kalshi_analytics.api.root import public_urls
    from kalshi_analytics.api.server import GRACE_SECONDS, ApiServer

    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    count = workers or settings.api_workers
    if count > 1 and bind_port != 0 and reuse_port_supported():
        # A listening socket per worker: the kernel spreads connections evenly (web/workers.py says why).
        try:
            ensure_port_free(bind_host, bind_port, "API", "API_PORT")  # never share the port with a stranger
        except ConflictError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        urls = public_urls(bind_host, bind_port)
        typer.echo(f"api:        {urls['api']}  (its metrics {urls['metrics']}; {count} workers)")
        typer.echo(f"docs:       {urls['docs']}  (ReDoc {urls['redoc']})")
        code = serve_workers(
            APP_FACTORY,
            bind_host,
            bind_port,
            count,
            server_class=ApiServer,
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=GRACE_SECONDS,
            **proxy_options(settings),
        )
        raise typer.Exit(code)
    urls = public_urls(bind_host, bind_port)
    typer.echo(f"api:        {urls['api']}  (its metrics {urls['metrics']})")
    typer.echo(f"docs:       {urls['docs']}  (ReDoc {urls['redoc']})")
    options: dict[str, Any] = {"access_log": False, "log_config": None, "timeout_graceful_shutdown": GRACE_SECONDS}
    if count > 1:  # port 0 or no SO_REUSEPORT: uvicorn's own supervisor, one shared socket
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=count,
            **options,
            **proxy_options(settings),
        )
        return
    config = uvicorn.Config(
        APP_FACTORY, factory=True, host=bind_host, port=bind_port, **options, **proxy_options(settings)
    )
    ApiServer(config).run()
