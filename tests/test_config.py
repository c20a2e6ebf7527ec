from __future__ import annotations

from pathlib import Path

import pytest

from kalshi_analytics.config import KalshiEnv, Settings, SettingsError, load_settings
from kalshi_analytics.config_docs import COMPOSE_VARIABLES


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in (
        "KALSHI_ENV",
        "KALSHI_API_BASE",
        "KALSHI_WS_URL",
        "DB_URL",
        "POLL_INTERVAL_SECONDS",
        "LOG_LEVEL",
        "CORS_ORIGINS",
        "KALSHI_API_KEY_ID",
        "KALSHI_PRIVATE_KEY_PATH",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_run_on_the_simulator_and_embedded_database() -> None:
    s = load_settings()
    assert s.kalshi_env is KalshiEnv.SIM
    assert s.db_url is None
    assert s.poll_interval_seconds == 5
    assert s.api_base == "http://127.0.0.1:8765/trade-api/v2"
    assert s.ws_url == "ws://127.0.0.1:8765/trade-api/ws/v2"


@pytest.mark.parametrize(
    ("env", "rest", "ws"),
    [
        ("prod", "https://external-api.kalshi.com/trade-api/v2", "wss://external-api-ws.kalshi.com/trade-api/ws/v2"),
        (
            "demo",
            "https://external-api.demo.kalshi.co/trade-api/v2",
            "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
        ),
    ],
)
def test_kalshi_env_picks_the_url_pair(monkeypatch: pytest.MonkeyPatch, env: str, rest: str, ws: str) -> None:
    monkeypatch.setenv("KALSHI_ENV", env)
    s = load_settings()
    assert (s.api_base, s.ws_url) == (rest, ws)


def test_explicit_urls_win_over_kalshi_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALSHI_ENV", "prod")
    monkeypatch.setenv("KALSHI_API_BASE", "https://api.elections.kalshi.com/trade-api/v2/")
    monkeypatch.setenv("KALSHI_WS_URL", "wss://api.elections.kalshi.com/trade-api/ws/v2")
    s = load_settings()
    assert s.api_base == "https://api.elections.kalshi.com/trade-api/v2"
    assert s.ws_url == "wss://api.elections.kalshi.com/trade-api/ws/v2"


def test_seed_variable_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "postgresql://kalshi:pw@db:5432/kalshi")
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "2.5")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("CORS_ORIGINS", "http://a.example, http://b.example")
    s = load_settings()
    assert s.db_url == "postgresql://kalshi:pw@db:5432/kalshi"
    assert s.poll_interval_seconds == 2.5
    assert s.log_level == "DEBUG"
    assert s.cors_origins == ["http://a.example", "http://b.example"]


def test_empty_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALSHI_ANALYTICS_DATA_DIR", "")
    monkeypatch.setenv("DB_URL", "")
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "")
    s = load_settings()
    assert s.data_dir.is_absolute()  # not Path("") — the current directory
    assert s.db_url is None
    assert s.poll_interval_seconds == 5


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("POLL_INTERVAL_SECONDS=7\n")
    assert load_settings().poll_interval_seconds == 7


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("POLL_INTERVAL_SECONDS", "-1", "POLL_INTERVAL_SECONDS: Input should be greater than 0"),
        ("POLL_INTERVAL_SECONDS", "often", "POLL_INTERVAL_SECONDS: Input should be a valid number"),
        ("KALSHI_ENV", "staging", "KALSHI_ENV: Input should be 'prod', 'demo' or 'sim'"),
        ("DB_URL", "mysql://root:hunter2@h/db", "DB_URL: must be a postgresql:// URL"),
        ("KALSHI_API_BASE", "ftp://x", "KALSHI_API_BASE: must start with http:// or https://"),
        ("KALSHI_PRIVATE_KEY_PATH", "/nonexistent/key.pem", "KALSHI_PRIVATE_KEY_PATH: no such file"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL: Input should be"),
    ],
)
def test_invalid_values_give_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, says: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as exc:
        load_settings()
    message = str(exc.value)
    assert says in message
    assert "\n" not in message
    assert "hunter2" not in message


def test_every_documented_variable_is_a_setting() -> None:
    example = Path(__file__).resolve().parents[1] / ".env.example"
    names = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in example.read_text().splitlines()
        if "=" in line and not line.startswith("##")
    }
    known = {
        (f.validation_alias if isinstance(f.validation_alias, str) else name).upper()
        for name, f in Settings.model_fields.items()
    }
    compose_only = {v.name for v in COMPOSE_VARIABLES}  # docker-compose.yml's own, listed after the settings
    assert names <= known | compose_only, f"documented but unknown: {names - known - compose_only}"
    assert known <= names, f"settings missing from .env.example: {known - names}"


def test_each_environment_has_its_own_embedded_database_and_real_data_defaults_to_prod() -> None:
    names = {env: load_settings(kalshi_env=env).embedded_database for env in ("sim", "demo", "prod")}
    assert names == {"sim": "kalshi_sim", "demo": "kalshi_demo", "prod": "kalshi"}
    assert load_settings().kalshi_env == "sim", "the product runs on the simulator by default"
    assert load_settings().for_real_data().embedded_database == "kalshi", "real history goes to prod"
    assert load_settings(kalshi_env="sim").for_real_data().embedded_database == "kalshi_sim", "unless one says so"
