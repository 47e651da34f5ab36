"""API tokens as plain data: their scopes, which endpoint each scope may call, the token's text
form, its expiry, and how long a wrong token waits. Pure: making the random secret, hashing and
storing it are the service's and the store's.

A token reads ``wgf_<id>_<secret>``: the ``wgf_`` prefix lets secret scanners (and people)
recognise a leaked one; ``<id>`` is a non-secret handle the store looks the token up by, so the
secret itself is compared once, in constant time, against the one hash stored for that id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from orchestrator.core.errors import InvalidInput
from orchestrator.core.quoting import quote

TOKEN_PREFIX = "wgf_"  # noqa: S105 (a prefix, no secret)
ID_HEX_CHARS = 16  # 64 bits: unique enough as a handle, not a secret
SECRET_BYTES = 32  # 256 bits of randomness from `secrets`
TOKEN_RE = re.compile(r"wgf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
TOKEN_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
MAX_EXPIRY_DAYS = 3650


class Scope(StrEnum):
    BILLING = "billing"  # the billing backend: top-ups, plans, a configuration's status
    PROVISION = "provision"  # the app: accounts and configurations, users' rights
    READ = "read"  # dashboards: every GET but the metrics
    METRICS = "metrics"  # Prometheus: /metrics only


# The one table of who may call what: (method, route as declared) -> the scopes allowed.
# A route missing here is refused to every token (tests/server check every route is listed).
ENDPOINT_SCOPES: dict[tuple[str, str], frozenset[Scope]] = {
    ("POST", "/v1/accounts"): frozenset({Scope.PROVISION}),
    ("GET", "/v1/accounts/{username}/export"): frozenset({Scope.PROVISION, Scope.READ}),
    ("DELETE", "/v1/accounts/{username}"): frozenset({Scope.PROVISION}),
    ("POST", "/v1/configurations"): frozenset({Scope.PROVISION}),
    ("POST", "/v1/configurations/batch"): frozenset({Scope.PROVISION}),
    ("GET", "/v1/configurations/{name}"): frozenset({Scope.BILLING, Scope.READ}),
    ("POST", "/v1/configurations/{name}/enable"): frozenset({Scope.PROVISION}),
    ("POST", "/v1/configurations/{name}/disable"): frozenset({Scope.PROVISION}),
    ("DELETE", "/v1/configurations/{name}"): frozenset({Scope.PROVISION}),
    ("POST", "/v1/topups"): frozenset({Scope.BILLING}),
    ("GET", "/v1/plans"): frozenset({Scope.BILLING, Scope.READ}),
    ("GET", "/v1/health"): frozenset({Scope.READ}),
    ("GET", "/metrics"): frozenset({Scope.METRICS}),
}


def allowed(scopes: frozenset[Scope], method: str, route: str) -> bool:
    """Whether a token holding ``scopes`` may call ``method route`` (a route not in the
    table: nobody may)."""
    return bool(scopes & ENDPOINT_SCOPES.get((method.upper(), route), frozenset()))


@dataclass(frozen=True)
class ApiToken:
    """A token as stored: never its secret, only the secret's SHA-256."""

    name: str
    token_id: str
    secret_hash: str
    scopes: frozenset[Scope]
    created_on: date
    expires_on: date | None  # None: until revoked; else the last day it works
    revoked: bool = False

    def refusal(self, today: date) -> str | None:
        """Why this token may not be used ``today`` (None: it may)."""
        if self.revoked:
            return "revoked"
        if self.expires_on is not None and today > self.expires_on:
            return "expired"
        return None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "id": self.token_id,
            "scopes": sorted(self.scopes),
            "created_on": self.created_on.isoformat(),
            "expires_on": self.expires_on.isoformat() if self.expires_on else None,
            "revoked": self.revoked,
        }


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    """Scopes as given on a command line (repeated, or comma-separated)."""
    words = [w.strip() for value in values for w in value.split(",") if w.strip()]
    if not words:
        raise InvalidInput("--scope: give at least one of " + ", ".join(s.value for s in Scope))
    unknown = [w for w in words if w not in {s.value for s in Scope}]
    if unknown:
        raise InvalidInput(
            f"--scope {quote(unknown[0])}: one of " + ", ".join(s.value for s in Scope)
        )
    return frozenset(Scope(w) for w in words)


def stored_scopes(text: str) -> frozenset[Scope]:
    """Scopes as the store keeps them (comma-separated); a word this version does not know
    grants nothing."""
    known = {s.value for s in Scope}
    return frozenset(Scope(w) for w in text.split(",") if w in known)


def parse_expiry(text: str | None, today: date) -> date | None:
    """``--expires``: a number of days from today, or the last valid day as YYYY-MM-DD."""
    if text is None:
        return None
    value = text.strip()
    if value.isdigit():
        days = int(value)
        if not 1 <= days <= MAX_EXPIRY_DAYS:
            raise InvalidInput(f"--expires {quote(text)}: 1 to {MAX_EXPIRY_DAYS} days")
        return today + timedelta(days=days)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"--expires {quote(text)}: a number of days or a date such as 2027-01-31"
        ) from None
    if day < today:
        raise InvalidInput(f"--expires {quote(text)}: that day has passed")
    if day > today + timedelta(days=MAX_EXPIRY_DAYS):
        raise InvalidInput(f"--expires {quote(text)}: at most {MAX_EXPIRY_DAYS} days ahead")
    return day


def check_token_name(name: str) -> None:
    if not TOKEN_NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"token name {quote(name)}: lowercase letters, digits, '.', '_' or '-', "
            "at most 63, starting with a letter or digit"
        )


def split_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a token's text form; None for anything else."""
    match = TOKEN_RE.fullmatch(text)
    return (match.group(1), match.group(2)) if match else None


def token_text(token_id: str, secret: str) -> str:
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


# Wrong tokens wait before their 401: the first few barely, then longer, up to the cap.
BRAKE_FREE_FAILURES = 3
BRAKE_BASE_SECONDS = 0.25
BRAKE_MAX_SECONDS = 10.0
# One failure forgiven per this many seconds without one, so a burst fades by itself.
BRAKE_FORGIVE_SECONDS = 30.0


def brake_delay(failures: int) -> float:
    """Seconds a request with a wrong token waits when ``failures`` wrong tokens (this one
    included) are on the counter: 0 for the first few, then doubling up to the cap."""
    over = failures - BRAKE_FREE_FAILURES
    if over <= 0:
        return 0.0
    grown: float = BRAKE_BASE_SECONDS * 2.0 ** min(over - 1, 16)
    return min(BRAKE_MAX_SECONDS, grown)


def brake_decay(failures: float, idle_seconds: float) -> float:
    """The counter after ``idle_seconds`` without a wrong token."""
    return max(0.0, failures - max(0.0, idle_seconds) / BRAKE_FORGIVE_SECONDS)
