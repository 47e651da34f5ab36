"""Sealing the fleet's secrets for the store: AES-256-GCM under a key derived from the fleet secret.

The fleet secret (``adapters/fleet_secret.py``) never encrypts anything itself: HKDF-SHA256
derives from it one key that seals (``info`` "wgfleet seal v1") and, separately, a public key
id (``info`` "wgfleet key id v1") that names which fleet secret sealed a row, so a controller
with the wrong secret is told so instead of failing on every row. A sealed value is bound to
the reference it is stored under and to that key id (AES-GCM's associated data): a
ciphertext copied onto another configuration's row, or relabelled with another key id, does
not open. Nonces are 96 random bits, one per seal; a fleet seals far fewer than the 2**32
values after which random GCM nonces start to risk a repeat.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from orchestrator.errors import StoreError

# The shortest fleet secret accepted: 256 bits, the strength of the key it yields.
MIN_SECRET_BYTES = 32
_NONCE_BYTES = 12
_FORMAT = "v1"  # the sealed text's prefix: lets a later format live beside this one
_SEAL_INFO = b"wgfleet seal v1"
_KEY_ID_INFO = b"wgfleet key id v1"
_KEY_ID_BYTES = 8


def _derive(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


class UnsealError(StoreError):
    """A sealed value does not open: another fleet secret sealed it, or it was changed or
    moved; the message names the reference, never a byte of the value."""


@dataclass(frozen=True)
class FleetKey:
    """The sealing key and the public key id one fleet secret yields."""

    key_id: str
    _aead: AESGCM = field(repr=False, compare=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> FleetKey:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a fleet secret needs at least {MIN_SECRET_BYTES} bytes")
        key_id = _derive(secret, _KEY_ID_INFO, _KEY_ID_BYTES).hex()
        return cls(key_id, AESGCM(_derive(secret, _SEAL_INFO, 32)))

    def seal(self, ref: str, value: str) -> str:
        """``value`` sealed for the row ``ref``: ``v1:`` and the base64 of nonce and ciphertext."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), _associated(ref, self.key_id))
        return f"{_FORMAT}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def unseal(self, ref: str, sealed: str) -> str:
        """The value sealed for ``ref`` under this key; UnsealError if it does not open."""
        prefix, _, body = sealed.partition(":")
        try:
            if prefix != _FORMAT:
                raise ValueError(prefix)
            raw = base64.b64decode(body, validate=True)
            if len(raw) <= _NONCE_BYTES:
                raise ValueError("too short")
            data = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(ref, self.key_id)
            )
            return data.decode("utf-8")
        except (ValueError, binascii.Error, InvalidTag, UnicodeDecodeError):
            raise UnsealError(
                f"secret {ref} in the store does not open with fleet key {self.key_id}: "
                "it was changed, or moved from another row"
            ) from None


def _associated(ref: str, key_id: str) -> bytes:
    """What a sealed value is bound to: its row's reference and the key id stored beside it."""
    return b"wgfleet sealed secret\x00" + ref.encode("utf-8") + b"\x00" + key_id.encode("ascii")


@dataclass(frozen=True)
class Keyring:
    """The keys a session may open sealed values with: the current one seals; during a
    rotation the previous one still opens what it sealed until every row is resealed."""

    current: FleetKey
    previous: tuple[FleetKey, ...] = ()

    def key(self, key_id: str, ref: str) -> FleetKey:
        for candidate in (self.current, *self.previous):
            if candidate.key_id == key_id:
                return candidate
        raise UnsealError(
            f"secret {ref} is sealed under fleet key {key_id}, this controller's fleet secret "
            f"is key {self.current.key_id}: copy the fleet's current secret to this controller"
        )
