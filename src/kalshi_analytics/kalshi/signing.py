"""RSA-PSS request signing (KALSHI_API.md §2).

Signed message = ``timestamp_ms + METHOD + path`` where ``path`` is the URL path from the root *including*
``/trade-api/v2`` (or ``/trade-api/ws/v2`` for the WebSocket upgrade) and *without* the query string. Signature:
RSA-PSS, SHA-256, MGF1(SHA-256), salt length = digest length, base64 (standard, padded). Headers:
``KALSHI-ACCESS-KEY``, ``KALSHI-ACCESS-TIMESTAMP`` (milliseconds), ``KALSHI-ACCESS-SIGNATURE``.

The private key is loaded once from its PEM file and never logged or repr'd.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Generator
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kalshi_analytics.logs import register_secret

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

#: The path the WebSocket upgrade signs, whatever the host (KALSHI_API.md §2).
WS_SIGN_PATH = "/trade-api/ws/v2"

PSS_PADDING = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def signing_message(timestamp_ms: int | str, method: str, path: str) -> bytes:
    """The exact bytes Kalshi verifies: ``"<ms><METHOD><path without query>"``."""
    return f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()


def load_private_key(path: Path | str, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an RSA private key (PKCS#1 or PKCS#8 PEM) from a file."""
    key = serialization.load_pem_private_key(Path(path).expanduser().read_bytes(), password=password)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: not an RSA private key")
    return key


class KalshiSigner:
    """Produces the three auth headers for a request; one instance per API key."""

    __slots__ = ("_clock_ms", "_key", "key_id")

    def __init__(
        self,
        key_id: str,
        private_key: rsa.RSAPrivateKey,
        *,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.key_id = key_id
        register_secret(key_id)  # it travels in a header a library may log
        self._key = private_key
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)

    @classmethod
    def from_file(cls, key_id: str, path: Path | str) -> KalshiSigner:
        return cls(key_id, load_private_key(path))

    def __repr__(self) -> str:
        return f"KalshiSigner(key_id={self.key_id!r})"

    def sign(self, message: bytes) -> str:
        """Base64 RSA-PSS(SHA-256) signature of ``message``."""
        return base64.b64encode(self._key.sign(message, PSS_PADDING, hashes.SHA256())).decode("ascii")

    def headers(self, method: str, path: str, timestamp_ms: int | None = None) -> dict[str, str]:
        """The auth headers for ``METHOD path`` (path from the root, query ignored)."""
        ts = self._clock_ms() if timestamp_ms is None else timestamp_ms
        return {
            HEADER_KEY: self.key_id,
            HEADER_TIMESTAMP: str(ts),
            HEADER_SIGNATURE: self.sign(signing_message(ts, method, path)),
        }

    def ws_headers(self, timestamp_ms: int | None = None) -> dict[str, str]:
        """Headers of the WebSocket upgrade (``GET /trade-api/ws/v2``); re-sign on every reconnect."""
        return self.headers("GET", WS_SIGN_PATH, timestamp_ms)


def verify_signature(
    public_key: rsa.RSAPublicKey, signature_b64: str, timestamp_ms: int | str, method: str, path: str
) -> bool:
    """Check a Kalshi signature (what the exchange, or our simulator, does)."""
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(
            base64.b64decode(signature_b64, validate=True),
            signing_message(timestamp_ms, method, path),
            PSS_PADDING,
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


class KalshiAuth(httpx.Auth):
    """httpx auth flow signing each request with its own URL path (``/trade-api/v2/...``, no query)."""

    def __init__(self, signer: KalshiSigner) -> None:
        self.signer = signer

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.signer.headers(request.method, request.url.path))
        yield request
