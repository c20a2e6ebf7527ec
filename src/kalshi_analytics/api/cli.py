"""``kalshi-analytics api``: serve the HTTP API with uvicorn."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from kalshi_analytics.config import SettingsError, load_settings
from kalshi_analytics.logs import configure_logging
from kalshi_analytics.web.server import proxy_options


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

    urls = public_urls(host or settings.api_host, port or settings.api_port)
    typer.echo(f"api:        {urls['api']}  (its metrics {urls['metrics']})")
    typer.echo(f"docs:       {urls['docs']}  (ReDoc {urls['redoc']})")
    uvicorn.run(
        "kalshi_analytics.api.app:app_from_env",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        access_log=False,
        log_config=None,
        **proxy_options(settings),
    )
