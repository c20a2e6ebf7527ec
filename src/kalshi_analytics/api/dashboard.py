"""The dashboard's build (``frontend/``, built by ``make run`` into ``frontend/dist``) served at ``/``.

Its hashed assets (``/assets/<name>-<hash>.js``) may be cached for a year: a new build has new names; scripts and
styles go gzip-compressed to clients that accept it. Everything
else that is not a file of the build and not under ``/api/`` or ``/metrics`` is a client-side route (``/markets/X``)
and gets ``index.html``, which is never cached, so a new build is picked up on the next load.
"""

from __future__ import annotations

import gzip
import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from kalshi_analytics.config import Settings
from kalshi_analytics.web.deps import API_PREFIX

#: Where a build is looked for when ``API_DASHBOARD_DIR`` is unset: copied into the package (a wheel that ships
#: it), else the repository's ``frontend/dist`` (a checkout, as ``make run`` builds it).
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "dashboard"
CHECKOUT_DIR = Path(__file__).resolve().parents[3] / "frontend" / "dist"

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: Asset types sent gzip-compressed to clients that accept it (compressed once: a hashed asset never changes).
COMPRESSIBLE = {".js", ".css", ".svg", ".json", ".map", ".txt", ".html"}

#: Paths that are never the dashboard's, so a mistyped API URL stays a JSON 404.
NOT_OURS = (API_PREFIX.strip("/") + "/", "api/", "metrics")


def dashboard_dir(settings: Settings) -> Path | None:
    """The folder of the build to serve (it holds ``index.html``), or None: none is built, or it is turned off."""
    if not settings.api_dashboard:
        return None
    candidates = [settings.api_dashboard_dir] if settings.api_dashboard_dir else [PACKAGE_DIR, CHECKOUT_DIR]
    for folder in candidates:
        if folder is not None and (folder / "index.html").is_file():
            return folder.resolve()
    return None


def index_response(folder: Path) -> Response:
    return FileResponse(folder / "index.html", headers={"Cache-Control": REVALIDATE})


def _file_in(folder: Path, path: str) -> Path | None:
    """``path`` inside ``folder`` when it names a file there (never anything outside it)."""
    if not path:
        return None
    candidate = (folder / path).resolve()
    if not candidate.is_relative_to(folder) or not candidate.is_file():
        return None
    return candidate


def router_for(folder: Path) -> APIRouter:
    """The catch-all route serving ``folder``: include it after every other router."""
    router = APIRouter(include_in_schema=False)
    compressed: dict[Path, bytes] = {}

    def asset(found: Path, request: Request) -> Response:
        headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
        if found.suffix not in COMPRESSIBLE or "gzip" not in request.headers.get("accept-encoding", ""):
            return FileResponse(found, headers=headers)
        body = compressed.get(found)
        if body is None:
            body = compressed[found] = gzip.compress(found.read_bytes(), compresslevel=9, mtime=0)
        media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        return Response(body, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def dashboard(path: str, request: Request) -> Response:
        if request.method != "GET" or path.startswith(NOT_OURS) or path == API_PREFIX.strip("/"):
            raise HTTPException(status_code=404)
        found = _file_in(folder, path)
        if found is not None:
            if path.startswith("assets/"):
                return asset(found, request)
            return FileResponse(found, headers={"Cache-Control": REVALIDATE})
        if path.startswith("assets/"):  # an old build's asset: a 404, not the app in place of a script
            raise HTTPException(status_code=404)
        return index_response(folder)

    return router
