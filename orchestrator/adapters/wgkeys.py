"""WireGuard key material made on the controller with `cryptography` (X25519)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private_key: str  # base64, as wg(8) prints it; shown to the user once, never stored
    public_key: str

    def __repr__(self) -> str:  # keep the private half out of tracebacks and logs
        return f"KeyPair(public_key={self.public_key!r})"


def new_keypair() -> KeyPair:
    private = X25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return KeyPair(base64.b64encode(raw_private).decode(), base64.b64encode(raw_public).decode())


def public_key_of(private_key: str) -> str:
    private = X25519PrivateKey.from_private_bytes(base64.b64decode(private_key))
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(raw).decode()


def new_preshared_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()
