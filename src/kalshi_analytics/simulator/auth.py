"""RSA-PSS request signatures as Kalshi checks them (KALSHI_API.md §2), and demo keys for the simulator.

Signed message = ``timestamp_ms + METHOD + path`` (path from the root incl. ``/trade-api/v2``, no query);
PSS with MGF1(SHA-256), salt length 32, SHA-256; the signature travels base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_HEADER = "kalshi-access-key"
TIMESTAMP_HEADER = "kalshi-access-timestamp"
SIGNATURE_HEADER = "kalshi-access-signature"

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


class AuthError(Exception):
    """The request carried Kalshi auth headers that do not verify (→ 401)."""


def sign(private_key: rsa.RSAPrivateKey, timestamp_ms: str, method: str, path: str) -> str:
    message = f"{timestamp_ms}{method.upper()}{path}".encode()
    return base64.b64encode(private_key.sign(message, _PSS, hashes.SHA256())).decode()


@dataclass(frozen=True, slots=True)
class DemoKey:
    key_id: str
    private_pem: str
    public_pem: str


def generate_demo_key(bits: int = 2048) -> DemoKey:
    """A fresh RSA key pair and key id, as Kalshi hands out (the private half is shown once)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return DemoKey(str(uuid.uuid4()), private_pem, public_pem)


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        # a private key file works too: take its public half
        private = serialization.load_pem_private_key(data, password=None)
        key = private.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA key")
    return key


@dataclass
class KeyStore:
    """Registered public keys by key id; verifies the three KALSHI-ACCESS-* headers."""

    keys: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    max_skew_seconds: float = 300.0

    def add(self, key_id: str, pem: str | bytes) -> None:
        self.keys[key_id] = load_public_key(pem)

    def add_file(self, key_id: str, path: Path) -> None:
        self.add(key_id, path.read_bytes())

    def verify(self, headers: Mapping[str, str], method: str, path: str) -> str | None:
        """The key id of a valid signature, ``None`` when no auth header is present; :class:`AuthError` else."""
        key_id = headers.get(KEY_HEADER)
        ts = headers.get(TIMESTAMP_HEADER)
        sig = headers.get(SIGNATURE_HEADER)
        if key_id is None and ts is None and sig is None:
            return None
        if not key_id or not ts or not sig:
            raise AuthError("incomplete KALSHI-ACCESS-* headers")
        public = self.keys.get(key_id)
        if public is None:
            raise AuthError("unknown API key id")
        if not ts.isdigit() or len(ts) < 13:
            raise AuthError("KALSHI-ACCESS-TIMESTAMP must be Unix time in milliseconds")
        if abs(int(ts) / 1000 - time.time()) > self.max_skew_seconds:
            raise AuthError("KALSHI-ACCESS-TIMESTAMP too far from the server clock")
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise AuthError("signature is not base64") from None
        try:
            public.verify(raw, f"{ts}{method.upper()}{path}".encode(), _PSS, hashes.SHA256())
        except InvalidSignature:
            raise AuthError("invalid signature") from None
        return key_id
