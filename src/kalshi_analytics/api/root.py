"""Where a browser lands: ``/`` (the dashboard when it is built, else the API docs) and ``/api/v1`` (an index).

The docs pages load Swagger UI and ReDoc from this package (``fastapi-offline`` ships their files), so they work
with no network; their assets are served under :data:`DOCS_ASSETS`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from kalshi_analytics import __version__
from kalshi_analytics.api.dashboard import index_response
from kalshi_analytics.web.deps import API_PREFIX

DOCS = f"{API_PREFIX}/docs"
REDOC = f"{API_PREFIX}/redoc"
OPENAPI = f"{API_PREFIX}/openapi.json"
DOCS_ASSETS = f"{API_PREFIX}/docs/assets"

router = APIRouter(include_in_schema=False)


def public_urls(host: str, port: int) -> dict[str, str]:
    """The URLs a person opens for an API listening on ``host:port`` (a wildcard address reads as loopback)."""
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    base = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"
    return {"api": base + API_PREFIX, "docs": base + DOCS, "redoc": base + REDOC, "metrics": f"{base}/metrics"}


@router.get("/")
async def root(request: Request) -> Response:
    """The dashboard when its build was there as the app was made (:mod:`.dashboard`), else the API docs."""
    folder = request.app.state.dashboard_dir
    if folder is not None:
        return index_response(folder)
    return RedirectResponse(DOCS)


@router.get(API_PREFIX)
async def api_index(request: Request) -> dict[str, Any]:
    """What a person (or a client) finds at the API's root: the docs and the main collections."""
    return {
        "name": request.app.title,
        "version": __version__,
        "docs": DOCS,
        "redoc": REDOC,
        "openapi": OPENAPI,
        "links": {
            "health": f"{API_PREFIX}/health",
            "ready": f"{API_PREFIX}/ready",
            "markets": f"{API_PREFIX}/markets",
            "market": f"{API_PREFIX}/markets/{{ticker}}",
            "history": f"{API_PREFIX}/markets/{{ticker}}/history",
            "orderbook": f"{API_PREFIX}/markets/{{ticker}}/orderbook",
            "trades": f"{API_PREFIX}/markets/{{ticker}}/trades",
            "stream": f"{API_PREFIX}/stream?tickers={{tickers}}",
            "backtests": f"{API_PREFIX}/backtests",
            "strategies": f"{API_PREFIX}/strategies",
            "recorder": f"{API_PREFIX}/recorder/status",
            "metrics": "/metrics",
        },
    }
