"""Settings: one pydantic-settings object read from the environment (and an optional ``.env``)."""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kalshi_analytics.errors import InvalidInputError
from kalshi_analytics.logs import mask_url


class KalshiEnv(StrEnum):
    PROD = "prod"
    DEMO = "demo"
    SIM = "sim"


# KALSHI_API.md §1: the recommended dedicated external endpoints.
KALSHI_URLS: dict[KalshiEnv, tuple[str, str]] = {
    KalshiEnv.PROD: (
        "https://external-api.kalshi.com/trade-api/v2",
        "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
    ),
    KalshiEnv.DEMO: (
        "https://external-api.demo.kalshi.co/trade-api/v2",
        "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2",
    ),
}

# The embedded server keeps one database per environment, so simulated and real data never mix; prod keeps the
# name every environment shared before (see db/embedded.py for what happens to that database).
EMBEDDED_DATABASES: dict[KalshiEnv, str] = {
    KalshiEnv.PROD: "kalshi",
    KalshiEnv.DEMO: "kalshi_demo",
    KalshiEnv.SIM: "kalshi_sim",
}

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


class SettingsError(InvalidInputError):
    """A setting has an invalid value; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # `export KALSHI_ANALYTICS_DATA_DIR=` means "not set", not "the current directory".
        env_ignore_empty=True,
    )

    kalshi_env: KalshiEnv = Field(
        KalshiEnv.SIM,
        description="prod | demo | sim (the built-in simulator); unset, the commands use sim and notebooks (the "
        "research module) read prod",
    )
    kalshi_api_base: str | None = Field(None, description="REST base URL; overrides KALSHI_ENV")
    kalshi_ws_url: str | None = Field(None, description="WebSocket URL; overrides KALSHI_ENV")
    kalshi_api_key_id: str | None = Field(None, description="Kalshi API key id for signed requests")
    kalshi_private_key_path: Path | None = Field(None, description="PEM file with the Kalshi RSA private key")
    kalshi_rate_tier: Literal["basic", "advanced", "expert", "premier", "paragon", "prime", "prestige"] = Field(
        "basic", description="Kalshi usage tier: sets the client-side REST read budget (basic = 20 requests/s)"
    )
    kalshi_rate_limit_rps: float | None = Field(
        None, gt=0, description="REST requests/s budget overriding the tier (e.g. for the simulator)"
    )
    kalshi_ws_tickers_per_command: int = Field(500, ge=1, le=10_000, description="max tickers per WS command")
    kalshi_ws_watchdog_seconds: float | None = Field(
        60.0, gt=0, description="restart a WebSocket silent for this long (unset = no watchdog)"
    )

    db_url: str | None = Field(None, description="PostgreSQL URL; unset = embedded PostgreSQL")
    db_read_url: str | None = Field(
        None,
        description="PostgreSQL URL of a read replica for the API's market reads (catalogue, latest, history, "
        "candles, order books, trades); unset = they read DB_URL. Writes (backtests, paper sessions), the live "
        "stream (LISTEN/NOTIFY and its event journal) and the response cache it refreshes stay on DB_URL: a "
        "standby cannot LISTEN, and the stream must resume from committed rows, never a lagging copy. /ready "
        "checks both",
    )
    test_database_url: str | None = Field(None, description="PostgreSQL URL the test suite uses")
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("kalshi-analytics")),
        validation_alias="KALSHI_ANALYTICS_DATA_DIR",
        description="where the embedded database and caches live",
    )

    poll_interval_seconds: float = Field(
        5.0, gt=0, le=3600, description="the recorder's poll loop: seconds between polls of the markets"
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="address the recorder's and the live runner's Prometheus metrics listen on (0.0.0.0 in a "
        "container, so Prometheus can scrape them)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="DEBUG | INFO | WARNING | ERROR | CRITICAL"
    )
    log_format: Literal["json", "kv"] = Field("kv", description="kv = key=value lines, json = one JSON object per line")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:5173", "http://127.0.0.1:5173"],
        description="origins (comma-separated) whose browsers may call the API (the dashboard's dev server)",
    )

    api_host: str = Field("127.0.0.1", description="address the API listens on")
    api_port: int = Field(8000, ge=1, le=65535, description="port the API listens on")
    api_workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes for `kalshi-analytics api`")
    api_rate_limit_enabled: bool = Field(True, description="enforce the per-client rate limits below")
    api_rate_read: str = Field("1200/minute", description="per-client limit of ordinary reads (slowapi/limits syntax)")
    api_rate_expensive: str = Field(
        "60/minute", description="per-client limit of raw-history pages, stream connects and backtest creates"
    )
    api_max_body_bytes: int = Field(
        65_536, ge=1024, description="largest request body; a larger one is refused (413) before it is read"
    )
    api_streams_per_client: int = Field(10, ge=1, description="concurrent SSE streams one client address may hold")
    api_streams_total: int = Field(500, ge=1, description="concurrent SSE streams one API process serves")
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses or networks (or *) whose X-Forwarded-For/-Proto headers are believed; empty = none",
    )
    api_ready_heartbeat_max_age_seconds: float = Field(
        15.0, gt=0, description="readiness fails when the leader recorder's heartbeat is older than this"
    )
    api_stream_heartbeat_seconds: float = Field(15.0, gt=0, description="SSE keep-alive comment interval")
    stream_resume_seconds: float = Field(
        300.0, gt=0, description="the SSE stream resumes a Last-Event-ID this recent; the recorder keeps 2× as long"
    )
    api_max_spread: Decimal = Field(
        Decimal("0.10"), ge=0, le=1, description="widest YES spread whose mid is the implied probability"
    )

    api_retry_after_seconds: int = Field(
        2, ge=1, le=3600, description="Retry-After of the 503 answers given while the database is unreachable"
    )

    api_cache_mb: int = Field(
        256, ge=0, description="memory for cached read answers per API process, MiB (0 turns the cache off)"
    )
    api_cache_fresh_seconds: float = Field(
        1.0, ge=0, description="a cached answer is reused this long even if newer data was committed"
    )
    api_cache_max_seconds: float = Field(
        300.0, gt=0, description="longest life of a cached answer whose data has not changed"
    )
    api_cache_stale_seconds: float = Field(
        60.0, ge=0, description="while the database is unreachable, send cached answers up to this old (0 = never)"
    )

    api_fast_lane: bool = Field(
        True,
        description="answer plain GETs of a market's latest snapshot and history without FastAPI's per-request "
        "parameter analysis (same answers; false sends every request through the full stack)",
    )

    api_backtest_worker: bool = Field(
        True, description="run queued backtests in this API process (false for pure read replicas)"
    )
    api_backtest_poll_seconds: float = Field(
        5.0, gt=0, description="how often the backtest worker looks for runs queued elsewhere"
    )
    api_backtest_queue_max: int = Field(
        100, ge=1, description="queued backtests (all replicas); a create beyond is refused (503) until some run"
    )
    api_dashboard: bool = Field(True, description="serve the dashboard's build at / when there is one")
    api_dashboard_dir: Path | None = Field(
        None,
        description="the dashboard's build (a folder with index.html); unset: the package's dashboard/, else the "
        "repository's frontend/dist",
    )
    backtest_sweep_max_runs: int = Field(1000, ge=1, description="largest parameter grid `backtest sweep` runs")

    sim_host: str = Field(
        "127.0.0.1", description="the simulator's address: where `simulate` listens and KALSHI_ENV=sim connects"
    )
    sim_port: int = Field(8765, ge=1, le=65535, description="the simulator's port (REST and WebSocket)")
    sim_seed: int = Field(1, description="`up`'s simulator: model seed (a new universe on every start either way)")
    sim_markets: int = Field(50, ge=1, le=10_000, description="`up`'s simulator: markets kept listed and trading")

    @field_validator("kalshi_rate_tier", mode="before")
    @classmethod
    def _lower_tier(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

    @field_validator("forwarded_allow_ips", mode="before")
    @classmethod
    def _split_ips(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [o.strip() for o in v.split(",") if o.strip()]
        return v

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _ips(cls, v: list[str]) -> list[str]:
        for item in v:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"must list IP addresses or networks (or *), got {item!r}") from None
        return v

    @field_validator("api_rate_read", "api_rate_expensive")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse

        try:
            parse(v)
        except ValueError:
            raise ValueError(f"must look like 1200/minute (N per second|minute|hour|day), got {v!r}") from None
        return v

    @field_validator("db_url", "db_read_url", "test_database_url")
    @classmethod
    def _postgres_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme not in POSTGRES_SCHEMES:
            raise ValueError(f"must be a postgresql:// URL, got {mask_url(v)!r}")
        return v

    @field_validator("kalshi_api_base", "kalshi_ws_url")
    @classmethod
    def _url(cls, v: str | None, info: Any) -> str | None:
        if v is None or v == "":
            return None
        allowed = ("http://", "https://") if info.field_name == "kalshi_api_base" else ("ws://", "wss://")
        if not v.startswith(allowed):
            raise ValueError(f"must start with {' or '.join(allowed)}, got {v!r}")
        return v.rstrip("/")

    @field_validator("kalshi_private_key_path")
    @classmethod
    def _key_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.expanduser().is_file():
            raise ValueError(f"no such file: {v}")
        return v.expanduser() if v is not None else None

    @property
    def api_base(self) -> str:
        """The REST base URL in use: an explicit KALSHI_API_BASE wins over KALSHI_ENV."""
        if self.kalshi_api_base:
            return self.kalshi_api_base
        if self.kalshi_env is KalshiEnv.SIM:
            return f"http://{self.sim_host}:{self.sim_port}/trade-api/v2"
        return KALSHI_URLS[self.kalshi_env][0]

    @property
    def ws_url(self) -> str:
        if self.kalshi_ws_url:
            return self.kalshi_ws_url
        if self.kalshi_env is KalshiEnv.SIM:
            return f"ws://{self.sim_host}:{self.sim_port}/trade-api/ws/v2"
        return KALSHI_URLS[self.kalshi_env][1]

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def for_real_data(self) -> Settings:
        """These settings for reading or importing real market history (notebooks, candle imports): an unset
        KALSHI_ENV means prod here, since the default (sim) is for running the product on the simulator."""
        if "kalshi_env" in self.model_fields_set:
            return self
        return self.model_copy(update={"kalshi_env": KalshiEnv.PROD})

    @property
    def embedded_database(self) -> str:
        """This environment's database on the embedded server (DB_URL, when set, names its own)."""
        return EMBEDDED_DATABASES[self.kalshi_env]


def _env_name(loc: tuple[int | str, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    return (alias if isinstance(alias, str) else field).upper()


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad variable, e.g. ``POLL_INTERVAL_SECONDS: Input should be greater than 0 (got '-1')``."""
    parts = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        given = err.get("input")
        shown = ""
        if isinstance(given, str | int | float) and "got" not in msg:
            shown = f" (got {mask_url(str(given))!r})"
        parts.append(f"{_env_name(err['loc'])}: {msg}{shown}")
    return "invalid setting " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning validation errors into a one-line :class:`SettingsError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
