"""The exchange boundary's exception hierarchy.

Everything raised by :mod:`kalshi_analytics.kalshi` for exchange trouble is a :class:`KalshiError`:

- :class:`KalshiApiError`: the exchange answered with an HTTP error (any of its three error-body shapes).
- :class:`KalshiProtocolError`: the exchange sent something we cannot read (malformed or truncated JSON, an
  unknown WebSocket message type, a body that does not match the schema). The raw text is kept.
- :class:`KalshiPaginationError`: a cursor came back twice (the loop guard of the paginating iterators).
- :class:`KalshiWsCommandError`: a WebSocket command was answered with ``{"type": "error"}``.
- :class:`KalshiWsConnectionError`: a WebSocket command could not be answered because the connection dropped,
  or the answer did not arrive in time.
"""

from __future__ import annotations

from kalshi_analytics.errors import AppError

_RAW_PREVIEW = 500


def preview(raw: str | bytes, limit: int = _RAW_PREVIEW) -> str:
    """A log-safe, truncated rendering of a raw payload."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray | memoryview) else str(raw)
    return text if len(text) <= limit else f"{text[:limit]}…(+{len(text) - limit} chars)"


class KalshiError(AppError):
    """Base class of every error of the exchange boundary."""


class KalshiProtocolError(KalshiError):
    """The exchange sent a payload we cannot parse; ``raw`` keeps the full original text."""

    #: ``kind`` values: the JSON itself is broken / a WS ``type`` we do not know / valid JSON, wrong shape.
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID = "invalid"

    def __init__(self, message: str, raw: str | bytes = "", *, kind: str = INVALID) -> None:
        self.raw: str = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)
        super().__init__(f"{message}: {preview(self.raw, 200)!r}" if self.raw else message)
        self.reason = message
        self.kind = kind


class KalshiPaginationError(KalshiProtocolError):
    """A paginated listing returned a cursor it had already returned (the listing would never end)."""


class KalshiApiError(KalshiError):
    """An HTTP error answered by the exchange.

    ``code``/``message``/``details`` come from whichever of the three body shapes Kalshi sent:
    flat ``{"code", "message", "details"}``, nested ``{"error": {"code", "message", "details"}}`` or
    ``{"error": "too many requests"}`` (then ``code`` is ``None`` and ``message`` is the string).
    """

    def __init__(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        details: str | None = None,
        *,
        body: str = "",
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.body = body
        self.method = method
        self.path = path
        where = f" {method} {path}" if method and path else ""
        text = ": ".join(p for p in (code, message, details) if p) or preview(body, 200) or "no body"
        super().__init__(f"HTTP {status}{where}: {text}")

    @property
    def retryable(self) -> bool:
        """429 (rate limited) and 5xx are transient; other 4xx are the caller's mistake and never retried."""
        return self.status == 429 or self.status >= 500


class KalshiWsCommandError(KalshiError):
    """A WebSocket command was rejected: ``code`` is Kalshi's numeric error code (e.g. 6 = already subscribed)."""

    #: Codes after which the subscription is gone and must be re-made (KALSHI_API.md §5).
    TERMINAL_CODES = frozenset({10, 17, 25})

    def __init__(self, code: int | None, message: str, *, command_id: int | None = None) -> None:
        self.code = code
        self.message = message
        self.command_id = command_id
        super().__init__(f"WebSocket command {command_id} failed: code {code}: {message}")


class KalshiWsConnectionError(KalshiError):
    """A WebSocket command got no answer: the connection dropped or the command timed out."""
