"""docker-compose.yml: valid by the Compose specification's JSON schema, the services the design names, settings
only from the environment (required ones refused when missing), and every variable it reads documented."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kalshi_analytics.config import Settings
from kalshi_analytics.config_docs import COMPOSE_VARIABLES, env_name
from tests.conftest import REPO_ROOT
from tests.deploy import compose
from tests.deploy import dockerfile as df

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
ENV = {"KALSHI_ENV": "sim", "POSTGRES_PASSWORD": "secret"}


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def loaded(env: dict[str, str] | None = None) -> dict[str, Any]:
    return compose.load(COMPOSE_FILE, ENV if env is None else env)


def test_valid_by_the_compose_specification() -> None:
    v = validator()
    for doc in (compose.load_raw(COMPOSE_FILE), loaded()):
        errors = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_mistakes() -> None:
    """The vendored schema really constrains services (a typo'd key or a bad condition is refused)."""
    v = validator()
    doc = loaded()
    doc["services"]["api"]["healthchek"] = {"test": ["CMD", "true"]}
    assert not v.is_valid(doc)
    doc = loaded()
    doc["services"]["live"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert not v.is_valid(doc)


def test_services_and_their_wiring() -> None:
    doc = loaded()
    services = doc["services"]
    assert set(services) == {"postgres", "migrate", "poller", "live", "api", "sim"}
    assert services["sim"]["profiles"] == ["sim"]
    assert compose.active_services(doc, set()).keys() == {"postgres", "migrate", "poller", "live", "api"}
    # PostgreSQL 15+, with a healthcheck and its data on a named volume.
    pg = services["postgres"]
    assert int(pg["image"].split(":")[1].split(".")[0]) >= 15
    assert pg["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "pg_isready" in pg["healthcheck"]["test"][1]
    volume = pg["volumes"][0].split(":")[0]
    assert volume in doc["volumes"]
    # The one-shot migration runs after PostgreSQL is healthy; everything using the database waits for it.
    assert services["migrate"]["command"] == ["kalshi-analytics", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert compose.depends_on(services["migrate"])["postgres"]["condition"] == "service_healthy"
    for name in ("poller", "live", "api"):
        assert compose.depends_on(services[name])["migrate"]["condition"] == "service_completed_successfully"
    # A leader and a standby recorder; the poller waits for the simulator only when the sim profile runs it.
    assert services["poller"]["scale"] == 2
    assert services["poller"]["command"][:2] == ["kalshi-analytics", "recorder"]
    assert compose.depends_on(services["poller"])["sim"] == {"condition": "service_healthy", "required": False}
    assert services["live"]["command"][:3] == ["kalshi-analytics", "live", "runner"]
    assert services["sim"]["command"][:2] == ["kalshi-analytics", "simulate"]
    # The API replicas publish a port range (one host port each), loopback unless API_PUBLISH says otherwise.
    assert services["api"]["ports"] == ["127.0.0.1:8000-8003:8000"]
    assert "command" not in services["api"], "the image's default command: kalshi-analytics api"
    # Every product container reads .env when there is one, and the same database.
    urls = {services[n]["environment"]["DB_URL"] for n in ("migrate", "poller", "live", "api")}
    assert urls == {"postgresql://kalshi:secret@postgres:5432/kalshi"}
    for name in ("migrate", "poller", "live", "api", "sim"):
        assert services[name]["env_file"] == [{"path": ".env", "required": False}]
        assert services[name]["init"] is True
        # What .env cannot move (environment wins over env_file): the container's addresses and paths, which
        # must agree with the images' (their healthchecks and COPY destinations).
        env = services[name]["environment"]
        image = df.stages((REPO_ROOT / services[name]["build"]["dockerfile"]).read_text())[0][-1].env()
        for key in ("API_HOST", "API_PORT", "METRICS_HOST", "API_DASHBOARD_DIR", "KALSHI_ANALYTICS_DATA_DIR"):
            assert env[key] == image.get(key, env[key]), (name, key)
        assert env["METRICS_HOST"] == env["API_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "KALSHI_ENV"])
def test_required_settings_are_refused_when_missing(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(compose.InterpolationError, match=missing):
        loaded(env)
    with pytest.raises(compose.InterpolationError, match=missing):
        loaded({**env, missing: ""})


def test_settings_come_from_the_environment_and_dotenv(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE.read_text(encoding="utf-8"))
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=from-dotenv\nKALSHI_ENV=demo\nPOSTGRES_DB=other\n")
    doc = compose.load(tmp_path / "docker-compose.yml", {"KALSHI_ENV": "prod"})  # the shell wins over .env
    env = doc["services"]["poller"]["environment"]
    assert env["KALSHI_ENV"] == "prod"
    assert env["DB_URL"] == "postgresql://kalshi:from-dotenv@postgres:5432/other"
    assert compose.env_files(doc["services"]["api"], tmp_path)["POSTGRES_DB"] == "other"


def test_every_variable_it_reads_is_documented() -> None:
    """Each ${VAR} in the compose file is a setting of the product or one of config_docs.COMPOSE_VARIABLES, so
    .env.example (generated from both) lists it; and each compose variable listed is really used."""
    used = compose.variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    settings = {env_name(n, f) for n, f in Settings.model_fields.items()}
    own = {v.name for v in COMPOSE_VARIABLES}
    assert used <= settings | own, used - settings - own
    assert own - {"COMPOSE_PROFILES"} <= used
    required = {v.name for v in COMPOSE_VARIABLES if v.default is None}
    assert required == {"POSTGRES_PASSWORD"}
    # Every setting a container sets for itself is a real setting (a typo would be silently ignored).
    doc = loaded()
    for name, svc in doc["services"].items():
        if name == "postgres":
            continue
        assert set(compose.as_dict(svc.get("environment"))) <= settings, name


def test_docker_compose_config_where_available(tmp_path: Path) -> None:
    """`docker compose config`, when this machine has Docker's CLI with the compose plugin (no daemon needed)."""
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False).returncode
    ):
        pytest.skip("docker compose not installed")
    env = {**os.environ, **ENV, "COMPOSE_PROFILES": "sim"}
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
