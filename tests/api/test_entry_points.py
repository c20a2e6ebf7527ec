"""Where a new user lands: ``/``, ``/api/v1``, the docs (served offline from the package), and ``HEAD``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine

from kalshi_analytics.api.root import public_urls
from tests.fixtures.app import market, serve, ticker, write


def test_the_banner_urls_are_ones_a_browser_opens() -> None:
    assert public_urls("127.0.0.1", 8000) == {
        "api": "http://127.0.0.1:8000/api/v1",
        "docs": "http://127.0.0.1:8000/api/v1/docs",
        "redoc": "http://127.0.0.1:8000/api/v1/redoc",
        "metrics": "http://127.0.0.1:8000/metrics",
    }
    assert public_urls("0.0.0.0", 80)["docs"] == "http://127.0.0.1:80/api/v1/docs"
    assert public_urls("::", 8000)["api"] == "http://[::1]:8000/api/v1"
    assert public_urls("fd00::5", 8000)["api"] == "http://[fd00::5]:8000/api/v1"


async def test_root_redirects_to_the_docs(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code in (302, 307), r.text
    assert r.headers["location"] == "/api/v1/docs"


async def test_api_root_lists_where_things_are(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["docs"] == "/api/v1/docs"
    assert body["openapi"] == "/api/v1/openapi.json"
    assert body["links"]["markets"] == "/api/v1/markets"
    for url in (body["docs"], body["redoc"], body["openapi"], *body["links"].values()):
        if "{" not in url:  # every link leads somewhere (/ready may say 503: no recorder runs here)
            assert (await client.get(url)).status_code in (200, 503), url


async def test_docs_load_every_asset_from_the_api_itself(client: httpx.AsyncClient) -> None:
    for page in ("/api/v1/docs", "/api/v1/redoc"):
        r = await client.get(page)
        assert r.status_code == 200, page
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
        scripts = [a for a in assets if a.endswith(".js")]
        assert scripts, r.text
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
            got = await client.get(asset)
            assert got.status_code == 200, asset
            assert len(got.content) > 1000, asset
        assert "/api/v1/openapi.json" in r.text


async def test_head_answers_every_get_route_like_get_without_a_body(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine
) -> None:
    t = ticker()
    await write(engine, market(t))
    app = app_factory(api_backtest_worker=False)
    fill = {"ticker": t, "backtest_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()), "name": "buy_and_hold"}
    paths = sorted(
        r.path
        for r in app.routes
        if isinstance(r, APIRoute) and "GET" in r.methods and "{" not in r.path.split("/")[-1]
    ) + sorted(r.path for r in app.routes if isinstance(r, APIRoute) and "GET" in r.methods and "{" in r.path)
    async with serve(app) as client:
        assert (await client.head("/api/v1/health")).status_code == 200
        for path in paths:
            url = path.format(**fill)
            params = {"tickers": t} if url.endswith("/stream") else {}
            head = await client.head(url, params=params)
            assert head.content == b"", url
            if url.endswith("/stream"):  # a HEAD never holds a stream open
                assert head.status_code == 200, url
                assert head.headers["content-type"].startswith("text/event-stream")
                continue
            get = await client.get(url, params=params)
            assert head.status_code == get.status_code != 405, url
            assert head.headers["content-type"] == get.headers["content-type"], url
        assert (await client.head("/api/v1/docs")).status_code == 200
        assert (await client.head("/")).status_code in (302, 307)
        assert (await client.head("/api/v1/nope")).status_code == 404
