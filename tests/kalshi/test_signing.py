"""RSA-PSS signing verified with ``cryptography`` against a key generated here."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_analytics.kalshi import KalshiAuth, KalshiSigner, signing_message, verify_signature
from kalshi_analytics.kalshi.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, load_private_key

TS_MS = 1703123456789
KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_signing_message_format() -> None:
    assert signing_message(TS_MS, "get", "/trade-api/v2/portfolio/orders?limit=5") == (
        b"1703123456789GET/trade-api/v2/portfolio/orders"
    )


def test_signature_verifies_and_common_mistakes_fail(key: rsa.RSAPrivateKey) -> None:
    signer = KalshiSigner(KEY_ID, key)
    headers = signer.headers("GET", "/trade-api/v2/markets?status=open&limit=5", timestamp_ms=TS_MS)
    assert headers[HEADER_KEY] == KEY_ID
    assert headers[HEADER_TIMESTAMP] == "1703123456789"
    sig = headers[HEADER_SIGNATURE]
    assert base64.b64decode(sig, validate=True)
    assert len(base64.b64decode(sig)) == 256
    pub = key.public_key()
    assert verify_signature(pub, sig, TS_MS, "GET", "/trade-api/v2/markets")
    # the query string is not signed, so the verifier may see it or not
    assert verify_signature(pub, sig, TS_MS, "GET", "/trade-api/v2/markets?status=open")
    # path without the /trade-api/v2 prefix, seconds instead of ms, other method, other key: all fail
    assert not verify_signature(pub, sig, TS_MS, "GET", "/markets")
    assert not verify_signature(pub, sig, TS_MS // 1000, "GET", "/trade-api/v2/markets")
    assert not verify_signature(pub, sig, TS_MS, "POST", "/trade-api/v2/markets")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    assert not verify_signature(other, sig, TS_MS, "GET", "/trade-api/v2/markets")
    assert not verify_signature(pub, "not base64!!", TS_MS, "GET", "/trade-api/v2/markets")


def test_signing_a_seconds_timestamp_does_not_verify_as_ms(key: rsa.RSAPrivateKey) -> None:
    wrong = KalshiSigner(KEY_ID, key).headers("GET", "/trade-api/v2/markets", timestamp_ms=TS_MS // 1000)
    assert not verify_signature(key.public_key(), wrong[HEADER_SIGNATURE], TS_MS, "GET", "/trade-api/v2/markets")


def test_pss_salt_is_randomised(key: rsa.RSAPrivateKey) -> None:
    signer = KalshiSigner(KEY_ID, key)
    a = signer.headers("GET", "/trade-api/v2/markets", TS_MS)[HEADER_SIGNATURE]
    b = signer.headers("GET", "/trade-api/v2/markets", TS_MS)[HEADER_SIGNATURE]
    assert a != b


def test_ws_headers_sign_the_ws_path(key: rsa.RSAPrivateKey) -> None:
    headers = KalshiSigner(KEY_ID, key, clock_ms=lambda: TS_MS).ws_headers()
    assert headers[HEADER_TIMESTAMP] == str(TS_MS)
    assert verify_signature(key.public_key(), headers[HEADER_SIGNATURE], TS_MS, "GET", "/trade-api/ws/v2")


def test_httpx_auth_signs_the_full_path_without_query(key: rsa.RSAPrivateKey) -> None:
    auth = KalshiAuth(KalshiSigner(KEY_ID, key, clock_ms=lambda: TS_MS))
    request = httpx.Request(
        "GET", "https://example.invalid/trade-api/v2/markets/KXBTCD-25AUG0517-T114999.99/orderbook?depth=3"
    )
    signed = next(auth.auth_flow(request))
    sig = signed.headers[HEADER_SIGNATURE]
    path = "/trade-api/v2/markets/KXBTCD-25AUG0517-T114999.99/orderbook"
    assert verify_signature(key.public_key(), sig, TS_MS, "GET", path)
    assert signed.headers[HEADER_KEY] == KEY_ID


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_key_loads_from_pem_file_and_is_never_shown(
    key: rsa.RSAPrivateKey, tmp_path: Path, fmt: serialization.PrivateFormat
) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    path = tmp_path / "kalshi.pem"
    path.write_bytes(pem)
    signer = KalshiSigner.from_file(KEY_ID, path)
    sig = signer.headers("GET", "/trade-api/v2/exchange/status", TS_MS)[HEADER_SIGNATURE]
    assert verify_signature(key.public_key(), sig, TS_MS, "GET", "/trade-api/v2/exchange/status")
    assert "PRIVATE" not in repr(signer)
    assert KEY_ID in repr(signer)
    assert load_private_key(path).key_size == 2048


def test_non_rsa_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "ec.pem"
    path.write_bytes(pem)
    with pytest.raises(ValueError, match="not an RSA private key"):
        load_private_key(path)
