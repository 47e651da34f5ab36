"""Account password hashes with scrypt (a memory-hard KDF from the standard library)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**15, 8, 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=N, r=R, p=P, maxmem=64 * 2**20, dklen=32
    )
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=64 * 2**20,
        dklen=32,
    )
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def describe_hash(stored: str) -> dict[str, object]:
    """What may be said about a stored hash (an account export): whether one is held and its
    scheme with its cost parameters, never the salt or the digest."""
    scheme, *fields = stored.split("$")
    if scheme == "scrypt" and len(fields) == 5:
        n, r, p = fields[:3]
        return {"held": True, "scheme": f"scrypt (N={n}, r={r}, p={p})"}
    if not stored or stored.startswith("!"):
        return {"held": False, "scheme": None}  # an account that cannot log in
    # Another scheme's name, if it looks like one; anything else is not repeated.
    named = fields and 0 < len(scheme) <= 20 and scheme.isascii() and scheme.isalnum()
    return {"held": True, "scheme": scheme if named else "unknown"}
