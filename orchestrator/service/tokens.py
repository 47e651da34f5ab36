"""The HTTP API's tokens: made, listed, revoked, and checked on each request.

A token is 256 random bits from `secrets`, shown once when made and stored only as the SHA-256
of its secret. A plain hash is enough here, where a password would need a slow one: a slow
hash protects guessable secrets from an offline search, and nobody can search 2**256 secrets
however fast the hash is; a fast one keeps each request's check cheap. The presented secret is
compared with the stored hash by ``hmac.compare_digest``, so the time taken says nothing about
how much of it matched; the row is found by the token's non-secret id, never by the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import date

from orchestrator.core.tokens import (
    ID_HEX_CHARS,
    SECRET_BYTES,
    ApiToken,
    check_token_name,
    parse_expiry,
    parse_scopes,
    split_token,
    token_text,
)
from orchestrator.service.context import Fleet, writes


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    # wgf_<id>_<secret>: shown once, never stored, left out of the repr.
    text: str = field(repr=False)

    def as_dict(self) -> dict[str, object]:
        return {**self.token.as_dict(), "token": self.text}


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@writes
def add_token(
    fleet: Fleet,
    name: str,
    scopes: list[str],
    expires: str | None = None,
    today: date | None = None,
) -> NewToken:
    """Make a token with ``scopes`` (names, repeated or comma-separated), valid until
    ``expires`` (days from today, or the last valid day as YYYY-MM-DD; None: until revoked)."""
    day = today or date.today()
    check_token_name(name)
    granted = parse_scopes(scopes)
    last_day = parse_expiry(expires, day)
    token_id = secrets.token_hex(ID_HEX_CHARS // 2)
    # token_urlsafe(32): 43 characters of [A-Za-z0-9_-], which the token's form expects.
    secret = secrets.token_urlsafe(SECRET_BYTES)
    token = ApiToken(name, token_id, _secret_hash(secret), granted, day, last_day)
    fleet.store.add_token(token)
    fleet.record(f"API token {name} made with scope(s) {', '.join(sorted(granted))}")
    return NewToken(token, token_text(token_id, secret))


def list_tokens(fleet: Fleet) -> list[ApiToken]:
    return fleet.store.tokens()


@writes
def revoke_token(fleet: Fleet, name: str) -> ApiToken:
    """Refuse the named token from now on (the row stays: its name keeps meaning one token)."""
    token = fleet.store.revoke_token(name)
    fleet.record(f"API token {name} revoked")
    return token


@dataclass(frozen=True)
class Verdict:
    """A presented token checked: the token when it may be used, else why not."""

    token: ApiToken | None
    refusal: str = ""


def authenticate(fleet: Fleet, presented: str, today: date | None = None) -> Verdict:
    """Check a presented token's text: known, its secret matching, not revoked or expired."""
    parts = split_token(presented)
    if parts is None:
        return Verdict(None, "not a wgfleet token")
    token_id, secret = parts
    token = fleet.store.token_by_id(token_id)
    # Compared even for an unknown id, so an unknown id and a wrong secret take the same work.
    stored = token.secret_hash if token is not None else "0" * 64
    matches = hmac.compare_digest(_secret_hash(secret), stored)
    if token is None or not matches:
        return Verdict(None, "unknown token")
    refusal = token.refusal(today or date.today())
    if refusal is not None:
        return Verdict(None, f"token {refusal}")
    return Verdict(token)
