"""docker-compose.yml run as local processes: every service of the ``sim`` profile with its own command (the image's
CMD where the service names none), the image's ENV, ``.env`` and its environment, replicas as its ``scale`` says;
service host names mapped to 127.0.0.1, each container port to a free loopback port, the ``postgres`` service
played by a private database of the test server. Services start in ``depends_on`` order, each must reach healthy
by its own healthcheck (compose's, else the Dockerfile's HEALTHCHECK, run as written), the chain works end to end
(one recorder leads, the API is ready and serves the dashboard, the live runner leads), and SIGTERM stops every
process with exit status 0 — what ``docker compose stop`` does to the containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import make_url

from tests.conftest import REPO_ROOT, free_port, wait_until
from tests.deploy import compose
from tests.deploy import dockerfile as df

pytestmark = pytest.mark.timeout(420)

VENV_BIN = Path(sys.executable).parent
HEALTHY_WITHIN = 120.0  # seconds, per service (two cores shared with other work)
STOP_WITHIN = 30.0  # compose's default stop grace is 10 s; the recorder's is 30 s
#: Where the images keep things (their ENV names these paths), and what stands in for them here.
IMAGE_PATHS = ("/app/data", "/app/dashboard")


@dataclass
class Image:
    env: dict[str, str]
    cmd: list[str]
    healthcheck: list[str] | None  # compose form: ["CMD", ...]
    exposed: list[int]


def image_of(service: dict[str, Any]) -> Image:
    build = service["build"]
    stages, _ = df.stages((REPO_ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).read_text())
    final = stages[-1]
    cmd = df.exec_form(final.last("CMD").args)  # type: ignore[union-attr]
    assert cmd is not None
    hc = final.last("HEALTHCHECK")
    check = df.healthcheck(hc) if hc else None
    health = ["CMD", *check.command] if check is not None and check.command else None
    exposed = [int(p.split("/")[0]) for e in final.all("EXPOSE") for p in e.args.split()]
    return Image(final.env(), cmd, health, exposed)


@dataclass
class Proc:
    service: str
    replica: int
    argv: list[str]
    env: dict[str, str]
    ports: dict[int, int]  # container port -> loopback port
    health: list[str] | None
    workdir: Path
    log: Path
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    healthy_after: float | None = None
    exit_code: int | None = None
    stopped_after: float | None = None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.replica}"

    def tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return f"--- {self.name} ({' '.join(self.argv)}):\n" + "\n".join(lines[-n:])


@dataclass
class Stack:
    services: dict[str, dict[str, Any]]
    procs: dict[str, list[Proc]] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)  # a container port -> the first replica's loopback port
    paths: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # the services but postgres, in depends_on order
    postgres_env: dict[str, str] = field(default_factory=dict)  # the postgres healthcheck's environment

    def logs(self) -> str:
        return "\n".join(p.tail() for ps in self.procs.values() for p in ps)


def rewrite(value: str, stack: Stack, own: dict[int, int], paths: dict[str, str], key: str = "") -> str:
    """A value of a container, as the same process on this machine sees it: service names and the wildcard
    address become 127.0.0.1, container ports their loopback stand-ins, image paths folders of the test. ``key``
    says what the value is (an environment variable's name, or the option before a command-line argument): a
    whole value is a host name or port only where the key says so (``SIM_HOST``, ``--port``)."""
    hosts = {*stack.services, "0.0.0.0", "127.0.0.1", "localhost"}

    def port(p: str) -> str:
        n = int(p)
        return str(own.get(n, stack.ports.get(n, n)))

    if key.lower().strip("-").endswith("host") and value in hosts:
        return "127.0.0.1"
    if key.lower().strip("-").endswith("port") and value.isdigit():
        assert int(value) in {**stack.ports, **own}, f"{key}={value}: a port no service exposes"
        return port(value)

    def hostport(m: re.Match[str]) -> str:
        if m.group(1) not in hosts:
            return m.group(0)
        return f"127.0.0.1:{port(m.group(2))}"

    value = re.sub(r"\b([A-Za-z0-9_.-]+):(\d{2,5})\b", hostport, value)
    for image_path, local in paths.items():
        value = value.replace(image_path, local)
    return value


def database_url(env: dict[str, str], project_env: dict[str, str], private_url: str) -> str:
    """The DB_URL of a container: it must name the postgres service with the .env's credentials; here the
    private database of the test server stands in for that service."""
    url = make_url(env["DB_URL"])
    assert (url.host, url.port) == ("postgres", 5432), env["DB_URL"]
    assert url.username == project_env["POSTGRES_USER"]
    assert url.database == project_env["POSTGRES_DB"]
    assert url.password == project_env["POSTGRES_PASSWORD"]
    return private_url


async def run_check(argv: list[str], env: dict[str, str], cwd: Path, limit: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, "timed out"
    return proc.returncode or 0, out.decode(errors="replace")


def seconds(text: str | None, default: float) -> float:
    if not text:
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


async def wait_healthy(proc: Proc, stack: Stack, timeout_option: str | None) -> None:
    assert proc.health is not None
    assert proc.process is not None
    argv = [rewrite(a, stack, proc.ports, stack.paths) for a in compose.Healthcheck(proc.health).argv()]
    deadline = time.monotonic() + HEALTHY_WITHIN
    last = ""
    while time.monotonic() < deadline:
        if proc.process.returncode is not None:
            pytest.fail(f"{proc.name} exited ({proc.process.returncode}) before it was healthy\n{stack.logs()}")
        code, last = await run_check(argv, proc.env, proc.workdir, seconds(timeout_option, 30))
        if code == 0:
            proc.healthy_after = time.monotonic() - proc.started
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"{proc.name} not healthy within {HEALTHY_WITHIN} s: {' '.join(argv)} said {last!r}\n{stack.logs()}")


def sockets(pid: int) -> list[Any]:
    proc = psutil.Process(pid)
    listing = getattr(proc, "net_connections", None) or proc.connections  # psutil < 6 names it connections
    return list(listing(kind="inet"))


async def metric(client: httpx.AsyncClient, port: int, name: str) -> float | None:
    try:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return None
    m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


async def eventually(condition: Any, what: str, stack: Stack, within: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        if await condition():
            return time.monotonic() - start
        await asyncio.sleep(0.25)
    pytest.fail(f"timed out after {within} s waiting for {what}\n{stack.logs()}")


def plan_stack(tmp_path: Path, fresh_database_url: str, server_url: str, dashboard_build: Path) -> Stack:
    """Every process of the ``sim`` profile, planned (nothing started): argv, environment, ports, healthcheck."""
    private = make_url(fresh_database_url)
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "docker-compose.yml", project / "docker-compose.yml")
    project_env = {
        "KALSHI_ENV": "sim",
        "COMPOSE_PROFILES": "sim",
        "POSTGRES_USER": private.username or "postgres",
        "POSTGRES_PASSWORD": private.password or "unused-by-trust-auth",
        "POSTGRES_DB": private.database or "",
        "LOG_FORMAT": "kv",  # read by every container from .env (the image says json; compose's env_file wins)
    }
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in project_env.items()))
    doc = compose.load(project / "docker-compose.yml", {})
    profiles = set(project_env["COMPOSE_PROFILES"].split(","))
    services = compose.active_services(doc, profiles)
    assert set(services) == {"postgres", "migrate", "poller", "live", "api", "sim"}
    stack = Stack(services)
    stack.paths = {"/app/dashboard": str(dashboard_build)}

    # postgres: played by the test server; its healthcheck (pg_isready) run against it, as the container would
    # run it against its own server.
    pg = services["postgres"]
    server = make_url(server_url)
    pg_env = {
        "PATH": os.environ["PATH"],
        **compose.as_dict(pg["environment"]),
        "PGHOST": server.host or str(server.query.get("host", "")),
        "PGPORT": str(server.port or 5432),
    }
    stack.postgres_env = pg_env
    stack.order = order = [s for s in compose.start_order(services) if s != "postgres"]

    # Every other service: its processes, ports assigned up front so references between services resolve.
    plans: list[tuple[str, int, dict[str, Any], Image]] = []
    for name in order:
        svc = services[name]
        image = image_of(svc)
        for replica in range(1, int(svc.get("scale", 1)) + 1):
            plans.append((name, replica, svc, image))
    own_ports: dict[str, dict[int, int]] = {}
    for name, replica, svc, image in plans:
        container_ports = set(image.exposed) | {int(p) for p in svc.get("expose", [])}
        container_ports |= {int(str(p).rsplit(":", 1)[-1]) for p in svc.get("ports", [])}
        own_ports[f"{name}-{replica}"] = mapping = {p: free_port() for p in sorted(container_ports)}
        for p, local in mapping.items():
            stack.ports.setdefault(p, local)
    for name, replica, svc, image in plans:
        key = f"{name}-{replica}"
        workdir = tmp_path / key
        (workdir / "data").mkdir(parents=True)
        paths = {**stack.paths, "/app/data": str(workdir / "data")}
        env = {k: v for k, v in image.env.items() if k != "PATH"}
        env |= compose.env_files(svc, project)
        env |= compose.as_dict(svc.get("environment"))
        if "DB_URL" in env:
            env["DB_URL"] = database_url(env, project_env, fresh_database_url)
        env = {k: rewrite(v, stack, own_ports[key], paths, k) for k, v in env.items()}
        env |= {"PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(workdir), "LANG": "C.UTF-8"}
        assert set(env) & {"TEST_DATABASE_URL"} == set(), "nothing of the test's own environment leaks in"
        command = svc.get("command") or image.cmd
        argv = [rewrite(a, stack, own_ports[key], paths, command[i - 1] if i else "") for i, a in enumerate(command)]
        hc = svc.get("healthcheck") or {}
        health = None if hc.get("disable") else (hc.get("test") or image.healthcheck)
        proc = Proc(name, replica, argv, env, own_ports[key], health, workdir, workdir / "output.log")
        stack.procs.setdefault(name, []).append(proc)
    for path in IMAGE_PATHS:  # every image path a container uses has a stand-in here
        for procs in stack.procs.values():
            for p in procs:
                assert all(path not in v for v in [*p.env.values(), *p.argv]) or path in stack.paths, (p.name, path)
    return stack


async def start(proc: Proc) -> None:
    """Start (or restart) one process, its output appended to its log; in a process group of its own, which
    :func:`kill_all` ends whole (as a container's end takes every process in it)."""
    with proc.log.open("ab") as out_file:
        proc.started = time.monotonic()
        proc.process = await asyncio.create_subprocess_exec(
            *proc.argv,
            env=proc.env,
            cwd=proc.workdir,
            stdout=out_file,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )


async def bring_up(stack: Stack, tmp_path: Path, figures: dict[str, float]) -> None:
    """``docker compose up``: postgres's healthcheck first, then each service in ``depends_on`` order once what
    it waits for is healthy (or, for the one-shot, completed); each replica must reach healthy."""
    services = stack.services
    healthy: set[str] = set()
    completed: set[str] = set()
    check = compose.Healthcheck(services["postgres"]["healthcheck"]["test"]).argv()
    code, out = await run_check(check, stack.postgres_env, tmp_path, 10)
    assert code == 0, out
    healthy.add("postgres")
    for name in stack.order:
        for dep, spec in compose.depends_on(services[name]).items():
            want = {"service_healthy": healthy, "service_completed_successfully": completed}
            if spec["condition"] in want:
                assert dep in want[spec["condition"]], f"{name} waits for {dep} ({spec['condition']})"
        for proc in stack.procs[name]:
            await start(proc)
        if services[name].get("restart") == "no":  # the one-shot: waited for, must succeed
            for proc in stack.procs[name]:
                assert proc.process is not None
                proc.exit_code = await asyncio.wait_for(proc.process.wait(), HEALTHY_WITHIN)
                assert proc.exit_code == 0, stack.logs()
                figures[f"{name} done"] = time.monotonic() - proc.started
            completed.add(name)
            continue
        timeout_option = (services[name].get("healthcheck") or {}).get("timeout")
        await asyncio.gather(*(wait_healthy(p, stack, timeout_option) for p in stack.procs[name]))
        healthy.add(name)
        for p in stack.procs[name]:
            figures[f"{p.name} healthy"] = p.healthy_after or 0.0


async def leader_and_standby(client: httpx.AsyncClient, stack: Stack) -> tuple[Proc, Proc]:
    """The recorder that leads and the one that waits, by their ``kalshi_recorder_leader`` metric."""
    pollers = stack.procs["poller"]
    values = [await metric(client, p.ports[9464], "kalshi_recorder_leader") for p in pollers]
    assert sorted(values) == [0.0, 1.0], values  # type: ignore[type-var]
    return pollers[values.index(1.0)], pollers[values.index(0.0)]


async def kill_all(stack: Stack) -> None:
    """SIGKILL every process of the stack with whatever it started (its group; also where the process itself
    has already ended, e.g. a supervisor killed by the test, whose workers would live on)."""
    for ps in stack.procs.values():
        for p in ps:
            if p.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.process.pid, signal.SIGKILL)
                await p.process.wait()


async def test_compose_services_run_as_a_process_stack(
    tmp_path: Path, fresh_database_url: str, server_url: str, dashboard_build: Path
) -> None:
    stack = plan_stack(tmp_path, fresh_database_url, server_url, dashboard_build)
    services, order = stack.services, stack.order
    begun = time.monotonic()
    figures: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await bring_up(stack, tmp_path, figures)
            figures["all healthy"] = time.monotonic() - begun
            # Each process listens on loopback only (the containers' 0.0.0.0 mapped here through API_HOST,
            # METRICS_HOST and --host), and only on ports its service exposes.
            for procs in stack.procs.values():
                for p in procs:
                    if p.process is None or p.process.returncode is not None:
                        continue
                    listening = {
                        (c.laddr.ip, c.laddr.port) for c in sockets(p.process.pid) if c.status == psutil.CONN_LISTEN
                    }
                    assert listening, p.name
                    assert listening <= {("127.0.0.1", port) for port in p.ports.values()}, (p.name, listening)

            # The chain end to end. Exactly one recorder leads; the other is a standby.
            pollers = [p.ports[9464] for p in stack.procs["poller"]]

            async def one_leader() -> bool:
                values = [await metric(client, port, "kalshi_recorder_leader") for port in pollers]
                return sorted(values) == [0.0, 1.0]  # type: ignore[type-var]

            figures["recorder leader"] = await eventually(one_leader, "one leader and one standby recorder", stack)
            # Every API replica is ready: database reachable, migrations at head, the leader's heartbeat fresh.
            index = (dashboard_build / "index.html").read_text()
            for api in stack.procs["api"]:
                base = f"http://127.0.0.1:{api.ports[8000]}"

                async def ready(base: str = base) -> bool:
                    return (await client.get(f"{base}/api/v1/ready")).status_code == 200

                figures[f"{api.name} ready"] = await eventually(ready, f"{api.name} /api/v1/ready", stack)
                page = await client.get(f"{base}/")
                assert page.status_code == 200
                assert page.text == index, "the API serves the dashboard's build"
                markets = (await client.get(f"{base}/api/v1/markets", params={"limit": 5})).json()
                assert markets["items"], "markets recorded from the simulator are served"
            live = stack.procs["live"][0].ports[9465]

            async def live_leads() -> bool:
                return await metric(client, live, "kalshi_live_leader") == 1.0

            figures["live runner leader"] = await eventually(live_leads, "the live runner to lead", stack)
            status = await client.get(
                f"http://127.0.0.1:{stack.procs['sim'][0].ports[8765]}/trade-api/v2/exchange/status"
            )
            assert status.status_code == 200
            assert "exchange_active" in status.json()

            # The standby is real: the leader recorder killed outright (no chance to release its lock), the other
            # leads within seconds; the dead one restarted (compose's restart: unless-stopped) waits as standby.
            assert services["poller"]["restart"] == "unless-stopped"
            leader, standby = await leader_and_standby(client, stack)
            assert leader.process is not None
            leader.process.kill()
            await leader.process.wait()

            async def standby_leads() -> bool:
                return await metric(client, standby.ports[9464], "kalshi_recorder_leader") == 1.0

            figures["standby took over"] = await eventually(standby_leads, "the standby recorder to lead", stack)
            await start(leader)
            await wait_healthy(leader, stack, None)
            figures[f"{leader.name} restarted, healthy"] = leader.healthy_after or 0.0
            assert await metric(client, leader.ports[9464], "kalshi_recorder_leader") == 0.0
            for api in stack.procs["api"]:
                ready = await client.get(f"http://127.0.0.1:{api.ports[8000]}/api/v1/ready")
                assert ready.status_code == 200, ready.text

        # docker compose stop: SIGTERM to every container (dependents first), each must exit 0 in time.
        for name in reversed(order):
            running = [p for p in stack.procs[name] if p.process is not None and p.process.returncode is None]
            for p in running:
                p.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
                p.started = time.monotonic()
            for p in running:
                p.exit_code = await asyncio.wait_for(p.process.wait(), STOP_WITHIN)  # type: ignore[union-attr]
                p.stopped_after = time.monotonic() - p.started
                figures[f"{p.name} stopped"] = p.stopped_after
        bad = {p.name: p.exit_code for ps in stack.procs.values() for p in ps if p.exit_code != 0}
        assert not bad, f"exit status after SIGTERM: {bad}\n{stack.logs()}"
        for ps in stack.procs.values():
            for p in ps:
                assert "Traceback" not in p.log.read_text(errors="replace"), p.tail(80)
        print("\ncompose process stack (seconds):")
        for what, value in figures.items():
            print(f"  {what:28} {value:6.2f}")
    finally:
        await kill_all(stack)


async def test_kill_all_leaves_no_process_of_the_stack_behind(tmp_path: Path) -> None:
    """An API with workers is a supervisor and its children: killing only the supervisor (SIGKILL, at the end of
    a test) would leave the workers running, re-parented to init, for the rest of the test run. The whole group
    goes."""
    child = "import time; time.sleep(120)"
    parent = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(120)"
    proc = Proc("api", 1, [sys.executable, "-c", parent], dict(os.environ), {}, None, tmp_path, tmp_path / "api.log")
    await start(proc)
    assert proc.process is not None
    supervisor = psutil.Process(proc.process.pid)
    await wait_until(lambda: bool(supervisor.children()), "the supervisor to start its worker")
    (worker,) = supervisor.children()
    try:
        await kill_all(Stack(services={}, procs={"api": [proc]}))
        _, alive = psutil.wait_procs([worker], timeout=5)
        assert not alive, "the worker outlived its supervisor"
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
