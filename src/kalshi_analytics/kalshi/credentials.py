"""The API key, checked when the clients are built: a key that cannot sign, or that the exchange refuses, stops
the process with one line at start-up — never later, e.g. when a standby recorder wins the lock and failover
needed it.

    signer = load_signer(settings)                 # None when no key is configured
    async with KalshiRestClient(url, signer=signer) as rest:
        await verify_credentials(rest)             # one signed GET /portfolio/balance; 401 → error
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_analytics.kalshi.errors import KalshiApiError, KalshiError
from kalshi_analytics.kalshi.signing import KalshiSigner
from kalshi_analytics.logs import get_logger

if TYPE_CHECKING:
    from kalshi_analytics.config import Settings
    from kalshi_analytics.kalshi.rest import KalshiRestClient

log = get_logger(__name__)

#: A cheap read that only a valid key may make (KALSHI_API.md §2: everything under /portfolio is private;
#: public market data may ignore a bad signature, so it proves nothing).
CHECK_PATH = "/portfolio/balance"


class KalshiCredentialsError(KalshiError):
    """The configured API key cannot be used: unreadable or malformed key file, or refused by the exchange."""


def load_signer(settings: Settings) -> KalshiSigner | None:
    """The signer of the configured key; ``None`` when neither KALSHI_API_KEY_ID nor KALSHI_PRIVATE_KEY_PATH is
    set. The messages name the variable and the file, never the key id or any of the key."""
    key_id, path = settings.kalshi_api_key_id, settings.kalshi_private_key_path
    if not key_id and path is None:
        return None
    if not key_id:
        raise KalshiCredentialsError("KALSHI_PRIVATE_KEY_PATH is set but KALSHI_API_KEY_ID is not: set both or neither")
    if path is None:
        raise KalshiCredentialsError("KALSHI_API_KEY_ID is set but KALSHI_PRIVATE_KEY_PATH is not: set both or neither")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KalshiCredentialsError(f"KALSHI_PRIVATE_KEY_PATH: cannot read {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KalshiCredentialsError(
            f"KALSHI_PRIVATE_KEY_PATH: {path} is not an unencrypted PEM private key (the file Kalshi gave you)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KalshiCredentialsError(f"KALSHI_PRIVATE_KEY_PATH: {path} is not an RSA private key")
    return KalshiSigner(key_id, key)


async def verify_credentials(rest: KalshiRestClient) -> bool:
    """Make one signed private request. ``KalshiCredentialsError`` when the exchange refuses the key (401);
    ``False`` (logged) when it could not be asked — an exchange that is down now is not a configuration error;
    ``True`` when the key was accepted, and trivially when there is no key (nothing to check)."""
    if rest.signer is None:
        return True
    try:
        await rest.get_raw(CHECK_PATH)
    except KalshiApiError as exc:
        if exc.status == 401:
            why = ": ".join(p for p in (exc.code, exc.message) if p) or "unauthorized"
            raise KalshiCredentialsError(
                f"{rest.base_url} refused the API key (HTTP 401 {why}); check KALSHI_API_KEY_ID and "
                "KALSHI_PRIVATE_KEY_PATH (demo and prod keys are separate)"
            ) from None
        log.warning("kalshi_credentials_unchecked", status=exc.status, error=str(exc)[:200])
        return False
    except (httpx.HTTPError, TimeoutError) as exc:
        log.warning("kalshi_credentials_unchecked", error=f"{type(exc).__name__}: {exc}"[:200])
        return False
    log.info("kalshi_credentials_accepted", exchange=rest.base_url)
    return True
