"""Masking of secrets before anything is printed or logged."""

from __future__ import annotations

import re
from typing import Any

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
