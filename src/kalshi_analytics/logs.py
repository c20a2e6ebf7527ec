"""Structured logging (JSON or key=value) for our code and the libraries we run, with secrets masked first."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
SECRET_KEY_PARTS = ("password", "secret", "private_key", "signature", "authorization", "token", "api_key")
MASK = "***"


def mask_url(url: str) -> str:
    """Replace the password of every URL in ``url`` with ``***`` (user and host stay readable)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def redact(value: Any, key: str = "") -> Any:
    """Recursively mask secrets in a log value: whole values under secret-looking keys, passwords in URLs."""
    if key and is_secret_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def _redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: redact(v, k) for k, v in event_dict.items()}


def configure_logging(level: str = "INFO", fmt: Literal["json", "kv"] = "kv") -> None:
    """Route structlog and stdlib logging through one renderer on stderr; secrets are masked in both."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_event,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event", "logger"])
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Per-request access lines cost ~30 % of API throughput (DESIGN.md §10); keep them opt-in.
    logging.getLogger("uvicorn.access").setLevel(max(logging.WARNING, root.level))
    # httpx logs every request at INFO: the recorder's REST calls would drown what a person needs to read.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    # Alembic announces its context at INFO on every run; our own log line says what was migrated.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
