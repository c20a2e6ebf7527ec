"""Structured logging (JSON or key=value) for our code and the libraries we run, with secrets masked first.

Masking happens twice: our structlog events are redacted by key and value; every stdlib record (websockets,
httpx, uvicorn, …) has its message text masked when the record is made, so no handler — ours, a test's, a
user's — ever sees a signature, an API key id or a PEM key, at any level.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, Literal

import structlog

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
SECRET_KEY_PARTS = ("password", "secret", "private_key", "signature", "authorization", "token", "api_key")
MASK = "***"
# A header's value wherever a library prints it: `> KALSHI-ACCESS-SIGNATURE: v` (websockets' debug lines),
# `'KALSHI-ACCESS-KEY': 'v'` (a dict repr), `(b'kalshi-access-signature', b'v')` (raw header tuples).
_SECRET_HEADER = re.compile(
    r"(?P<name>kalshi-access-(?:key|signature)|authorization|proxy-authorization|cookie|x-api-key)"
    r"(?P<sep>['\"]?\s*[:=,]\s*(?:b?['\"])?)(?P<scheme>(?:bearer|basic)\s+)?(?P<value>[^'\"\s,)}\]]+)",
    re.IGNORECASE,
)
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL)
# Values known to be secret wherever they appear (the API key id: it also shows up outside headers).
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (e.g. the API key id once it is loaded)."""
    if value and len(value) >= 4:  # a short value would mask ordinary words
        _known_secrets.add(value)


def mask_url(url: str) -> str:
    """Replace the password of every URL in ``url`` with ``***`` (user and host stay readable)."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)


def mask_text(text: str) -> str:
    """``text`` with URL passwords, secret header values, PEM private keys and registered secrets masked."""
    masked = _SECRET_HEADER.sub(lambda m: f"{m['name']}{m['sep']}{m['scheme'] or ''}{MASK}", mask_url(text))
    if "PRIVATE KEY" in masked:
        masked = _PEM_KEY.sub(MASK, masked)
    for secret in _known_secrets:
        if secret in masked:
            masked = masked.replace(secret, MASK)
    return masked


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def redact(value: Any, key: str = "") -> Any:
    """Recursively mask secrets in a log value: whole values under secret-looking keys, passwords in URLs."""
    if key and is_secret_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def _redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: redact(v, k) for k, v in event_dict.items()}


class _MaskingRecordFactory:
    """Wraps the stdlib record factory: a record's message is masked before any handler or filter sees it."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        # structlog's own records carry the (already redacted) event dict as msg; only text messages need this.
        if isinstance(record.msg, str):
            try:
                text = record.getMessage()
            except (TypeError, ValueError):  # a library's broken format string: logging reports it later
                return record
            masked = mask_text(text)
            if masked != text:
                record.msg, record.args = masked, None
        return record


def install_record_masking() -> None:
    """Mask secrets in every stdlib log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _MaskingRecordFactory):
        logging.setLogRecordFactory(_MaskingRecordFactory(current))


def configure_logging(level: str = "INFO", fmt: Literal["json", "kv"] = "kv") -> None:
    """Route structlog and stdlib logging through one renderer on stderr; secrets are masked in both."""
    install_record_masking()
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
