"""The dashboard's build served at ``/`` (client-side routes fall back to its index, hashed assets cached for a
year, the API's own 404s untouched), ``/`` as before without a build, and its generated client kept in step with
the API: the committed OpenAPI document and TypeScript client are what the API and the generator give today."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kalshi_analytics.api import openapi
from kalshi_analytics.api.app import create_app
from tests.conftest import REPO_ROOT
from tests.fixtures.app import make_settings, serve

FRONTEND = REPO_ROOT / "frontend"
ASSET = "assets/index-Ab12Cd34.js"


def _build(folder: Path) -> Path:
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text('<!doctype html><div id="root"></div><script src="/assets/index-Ab12Cd34.js">')
    (folder / ASSET).write_text("console.log('dashboard')")
    (folder / "robots.txt").write_text("User-agent: *")
    return folder


async def test_the_build_is_served_with_client_routes_and_cacheable_assets(database_url: str, tmp_path: Path) -> None:
    dist = _build(tmp_path / "dist")
    (tmp_path / "secret.txt").write_text("outside the build")
    app = create_app(make_settings(database_url, api_dashboard=True, api_dashboard_dir=dist))
    async with serve(app) as client:
        for path in ("/", "/markets/KXFOO-1", "/paper/1234", "/no/such/page"):
            r = await client.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith("text/html"), path
            assert 'id="root"' in r.text, path
            assert r.headers["cache-control"] == "no-cache", path  # a new build is seen on the next load

        asset = await client.get("/" + ASSET)
        assert asset.status_code == 200
        assert asset.text == "console.log('dashboard')"
        assert "javascript" in asset.headers["content-type"]
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["content-encoding"] == "gzip"  # httpx asked for it (and decoded it above)
        plain = await client.get("/" + ASSET, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == b"console.log('dashboard')"
        robots = await client.get("/robots.txt")
        assert (robots.status_code, robots.headers["cache-control"]) == (200, "no-cache")

        # An old build's asset is a 404, not the app's HTML where a script is expected.
        assert (await client.get("/assets/index-Old00000.js")).status_code == 404
        # Nothing outside the build, however the path is spelt.
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
            r = await client.get(path)
            assert "outside the build" not in r.text, path

        # The API's own answers are untouched: a mistyped API URL stays a JSON 404, for any method.
        for method in ("GET", "POST", "DELETE"):
            r = await client.request(method, "/api/v1/nope")
            assert r.status_code == 404, method
            assert r.headers["content-type"].startswith("application/problem+json"), method
        assert (await client.get("/api/v1")).json()["openapi"] == "/api/v1/openapi.json"
        assert (await client.get("/api/v1/health")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.head("/markets/KXFOO-1")).status_code == 200


async def test_without_a_build_the_root_still_leads_to_the_docs(database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(database_url, api_dashboard=True, api_dashboard_dir=tmp_path))
    async with serve(app) as client:
        r = await client.get("/")
        assert r.status_code in (302, 307)
        assert r.headers["location"] == "/api/v1/docs"
        assert (await client.get("/markets/KXFOO-1")).status_code == 404
    built = create_app(make_settings(database_url, api_dashboard=False, api_dashboard_dir=_build(tmp_path / "d")))
    async with serve(built) as client:
        assert (await client.get("/")).status_code in (302, 307), "API_DASHBOARD=false turns it off"


def test_the_committed_openapi_document_is_the_apis() -> None:
    committed = (FRONTEND / "openapi.json").read_text(encoding="utf-8")
    assert json.loads(committed) == openapi.openapi_document(), (
        "frontend/openapi.json is out of date: run `make openapi` (it regenerates the dashboard's client too)"
    )
    assert committed == openapi.render(), "frontend/openapi.json is not in its canonical form: run `make openapi`"


def test_the_committed_client_is_what_the_generator_makes_of_it(tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None or not (FRONTEND / "node_modules" / "@hey-api" / "openapi-ts").is_dir():
        if os.environ.get("CI"):
            pytest.fail("the dashboard's node packages are not installed (.ci/run runs `npm ci` in frontend/)")
        pytest.skip("Node.js or frontend/node_modules missing (run `npm ci` in frontend/)")
    out = tmp_path / "client"
    subprocess.run(
        [npm, "run", "--silent", "generate"],  # the generator, then its scrub of registry links
        cwd=FRONTEND,
        env={**os.environ, "OPENAPI_TS_OUTPUT": str(out)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = FRONTEND / "src" / "client"
    cmp = filecmp.dircmp(committed, out)
    problems: list[str] = []

    def walk(d: filecmp.dircmp[str], prefix: str = "") -> None:
        problems.extend(f"only committed: {prefix}{n}" for n in d.left_only)
        problems.extend(f"missing: {prefix}{n}" for n in d.right_only)
        for name in d.common_files:
            if (Path(d.left) / name).read_bytes() != (Path(d.right) / name).read_bytes():
                problems.append(f"differs: {prefix}{name}")
        for name, sub in d.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(cmp)
    assert not problems, f"frontend/src/client is out of date ({problems}): run `make openapi`"
