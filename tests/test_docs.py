"""docs/: links resolve, and the commands and routes it documents exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from kalshi_analytics.cli import app

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def test_the_documentation_pages_exist() -> None:
    names = {p.name for p in PAGES}
    assert {
        "README.md",
        "quickstart.md",
        "architecture.md",
        "configuration.md",
        "api.md",
        "notebooks.md",
        "operations.md",
    } <= names
    assert "](docs/README.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_relative_links_resolve() -> None:
    for page in [*PAGES, REPO / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def _commands() -> Any:
    """The CLI as a command tree (typer's own click: groups answer ``get_command``)."""
    return typer.main.get_command(app)


def test_documented_cli_commands_exist() -> None:
    root = _commands()
    ctx = typer.Context(root)
    seen = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for first, second in re.findall(r"kalshi-analytics ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", text):
            cmd = root.get_command(ctx, first)
            assert cmd is not None, f"{page.name}: no command 'kalshi-analytics {first}'"
            if hasattr(cmd, "get_command") and second:
                assert cmd.get_command(ctx, second) is not None, f"{page.name}: no 'kalshi-analytics {first} {second}'"
            seen += 1
    assert seen > 20


def test_documented_options_exist() -> None:
    root = _commands()
    ctx = typer.Context(root)
    recorder = root.get_command(ctx, "recorder")  # type: ignore[attr-defined]
    live = root.get_command(ctx, "live").get_command(ctx, "runner")  # type: ignore[attr-defined]
    api = root.get_command(ctx, "api")  # type: ignore[attr-defined]
    opts = {
        name: {o for p in c.params for o in p.opts}
        for name, c in (("recorder", recorder), ("live", live), ("api", api))
    }
    assert "--metrics-port" in opts["recorder"]
    assert "--metrics-port" in opts["live"]
    assert {"--host", "--port", "--workers"} <= opts["api"]


def _route_key(method: str, path: str) -> tuple[str, str]:
    return method, re.sub(r"\{[^}]+\}", "{}", path.split("?", maxsplit=1)[0])


def test_documented_routes_exist() -> None:
    spec = json.loads((REPO / "frontend" / "openapi.json").read_text(encoding="utf-8"))
    known = {_route_key(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = {_route_key(m, p) for m, p in re.findall(r"`(GET|POST|DELETE) (/[^`\s]*)", text)}
    documented.discard(("GET", "/api/v1"))  # the index of links, left out of the schema on purpose
    assert len(documented) >= 20
    assert documented <= known, sorted(documented - known)
    # Every route of the API is in the guide's table (the session sub-resources share a row).
    shared_row = {k for k in known if k[1].startswith("/api/v1/paper-sessions/{}/") and k[0] == "GET"}
    assert known - documented - shared_row == set()
