"""The Dockerfiles, checked structurally (this machine has no Docker daemon and no hadolint): multi-stage builds
whose final stage is a slim Python with only the virtualenv (and the dashboard's build), an unprivileged user,
a healthcheck on the product's own endpoint, exec-form commands the CLI really has, and COPY sources that exist
and that .dockerignore lets into the build context."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.deploy import dockerfile as df

DOCKERFILES = {"Dockerfile": 8000, "Dockerfile.poller": 9464}  # file -> the port its healthcheck probes
#: Build tools that must not reach the final stage (compilers, headers, package managers' build helpers).
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|libpq-dev|python3-dev|cargo|rustc|npm|node|git)\b")
CLI = Path(sys.executable).with_name("kalshi-analytics")


def parsed(name: str) -> tuple[list[df.Stage], dict[str, str]]:
    return df.stages((REPO_ROOT / name).read_text(encoding="utf-8"))


@pytest.fixture(params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_multi_stage_with_a_slim_python_runtime(dockerfile: str) -> None:
    stages, _ = parsed(dockerfile)
    assert len(stages) >= 2, "build and runtime in separate stages"
    final = stages[-1]
    assert final.base == "python:3.11-slim", final.base
    names = [s.name for s in stages]
    assert len(set(names)) == len(names), "stage names are unique"
    # The runtime installs nothing: it only copies what the build stages made, and creates its user.
    for run in final.all("RUN"):
        assert "apt-get install" not in run.args, f"line {run.line}: {run.args}"
        assert "pip install" not in run.args, f"line {run.line}: {run.args}"
        assert not BUILD_TOOLS.search(run.args), f"line {run.line}: build tool in the final stage: {run.args}"
    for ins in final.all("COPY"):
        opts, _sources, _dest = df.copy_sources(ins)
        if "from" in opts:
            assert opts["from"] in names[:-1], f"line {ins.line}: COPY --from={opts['from']} names no earlier stage"
    # The virtualenv the build stage made is what runs.
    copies = [df.copy_sources(i) for i in final.all("COPY")]
    assert any(src == ["/opt/venv"] and dest == "/opt/venv" for _o, src, dest in copies)
    assert final.env()["PATH"].startswith("/opt/venv/bin:")


def test_runs_as_an_unprivileged_user(dockerfile: str) -> None:
    final = parsed(dockerfile)[0][-1]
    user = final.last("USER")
    assert user is not None, "the final stage sets USER"
    uid = user.args.split(":")[0]
    assert uid not in ("root", "0"), user.args
    assert uid.isdigit(), "a numeric uid (Kubernetes' runAsNonRoot can verify it)"
    assert int(uid) >= 1000
    created = " ".join(r.args for r in final.all("RUN"))
    assert f"--uid {uid}" in created, "the user is created in the image"
    # Everything after USER runs unprivileged; the writable data folder belongs to that user.
    assert final.instructions.index(user) > max(final.instructions.index(r) for r in final.all("RUN"))
    data = final.env()["KALSHI_ANALYTICS_DATA_DIR"]
    assert f"mkdir -p {data}" in created
    assert f"chown kalshi:kalshi {data}" in created


def test_healthcheck_uses_the_products_endpoint(dockerfile: str) -> None:
    final = parsed(dockerfile)[0][-1]
    ins = final.last("HEALTHCHECK")
    assert ins is not None
    check = df.healthcheck(ins)
    assert check.command is not None, "exec form (no shell needed)"
    assert check.command[0] == "python", check.command
    assert {"interval", "timeout", "start-period", "retries"} <= set(check.options)
    port = DOCKERFILES[dockerfile]
    assert f"http://127.0.0.1:{port}/" in check.command[-1]
    exposed = {p for e in final.all("EXPOSE") for p in e.args.split()}
    assert str(port) in exposed
    # The port probed is the one the service listens on: the API's from API_PORT, the recorder's from its command.
    env = final.env()
    cmd = df.exec_form(final.last("CMD").args)  # type: ignore[union-attr]
    assert cmd is not None
    listens = env.get("API_PORT") if cmd[1] == "api" else cmd[cmd.index("--metrics-port") + 1]
    assert listens == str(port)


def test_command_is_exec_form_and_exists_in_the_cli(dockerfile: str) -> None:
    final = parsed(dockerfile)[0][-1]
    assert final.last("ENTRYPOINT") is None or df.exec_form(final.last("ENTRYPOINT").args) is not None  # type: ignore[union-attr]
    cmd = final.last("CMD")
    assert cmd is not None
    argv = df.exec_form(cmd.args)
    assert argv is not None, "exec form: the process gets SIGTERM itself (no shell in between)"
    assert argv[0] == "kalshi-analytics"
    # The command and its options are real: the CLI accepts them (--help parses the options and exits 0).
    subcommand = [a for a in argv[1:] if not a.startswith("--")][:1]
    done = subprocess.run([str(CLI), *argv[1:], "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert subcommand
    assert f"kalshi-analytics {subcommand[0]}" in done.stdout


def test_copies_only_files_that_exist_and_reach_the_build_context(dockerfile: str) -> None:
    stages, _ = parsed(dockerfile)
    patterns = df.dockerignore_patterns(REPO_ROOT / ".dockerignore")
    for stage in stages:
        workdir = "/"
        for ins in stage.instructions:
            if ins.keyword == "WORKDIR":
                workdir = ins.args
            if ins.keyword not in ("COPY", "ADD"):
                continue
            assert ins.keyword == "COPY", f"line {ins.line}: COPY, not ADD"
            opts, sources, _dest = df.copy_sources(ins)
            if "from" in opts:
                continue
            for src in sources:
                path = REPO_ROOT / src
                assert path.exists(), f"{dockerfile} line {ins.line}: {src} is not in the repository"
                assert not df.ignored(src, patterns), f"{dockerfile} line {ins.line}: .dockerignore leaves out {src}"
        assert workdir.startswith("/"), "absolute WORKDIR"


def test_dashboard_build_lands_where_the_api_looks() -> None:
    stages, _ = parsed("Dockerfile")
    by_name = {s.name: s for s in stages}
    node = by_name["dashboard"]
    assert node.base.startswith("node:")
    assert any("npm ci" in r.args for r in node.all("RUN"))
    assert any("npm run build" in r.args for r in node.all("RUN"))
    final = stages[-1]
    dashboard_copies = [df.copy_sources(i) for i in final.all("COPY") if df.flags(i.args)[0].get("from") == "dashboard"]
    assert len(dashboard_copies) == 1
    _opts, [src], dest = dashboard_copies[0]
    # vite writes frontend/dist (its outDir) under the stage's WORKDIR; the API serves API_DASHBOARD_DIR.
    outdir = re.search(r'outDir:\s*"([^"]+)"', (REPO_ROOT / "frontend" / "vite.config.ts").read_text())
    assert outdir is not None
    assert src == f"{node.last('WORKDIR').args}/{outdir.group(1)}"  # type: ignore[union-attr]
    assert final.env()["API_DASHBOARD_DIR"] == dest
    # The build reads nothing outside frontend/ (the only part of the repository copied into that stage).
    for ins in node.all("COPY"):
        _o, sources, _d = df.copy_sources(ins)
        assert all(s.startswith("frontend/") for s in sources)


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = df.dockerignore_patterns(REPO_ROOT / ".dockerignore")
    for path in (
        ".env",
        ".venv/bin/python",
        "frontend/node_modules/react/index.js",
        "frontend/dist/index.html",
        ".git/HEAD",
        "keys/kalshi.pem",
        "src/kalshi_analytics/__pycache__/x.pyc",
        "tests/conftest.py",
    ):
        assert df.ignored(path, patterns), path
    for path in (
        "pyproject.toml",
        "README.md",
        "src/kalshi_analytics/cli.py",
        "frontend/src/main.tsx",
        "frontend/package-lock.json",
        "src/kalshi_analytics/db/alembic/env.py",
    ):
        assert not df.ignored(path, patterns), path


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_hadolint_where_available(name: str) -> None:
    """hadolint, when this machine has it (the structural tests above stand in where it has not)."""
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed")
    done = subprocess.run([hadolint, str(REPO_ROOT / name)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
