"""API tokens (``api_tokens``): who may call `wgfleet serve`, by scope; never a secret.

A row holds the token's name, its non-secret id, the SHA-256 of its secret, its scopes, the
day it was made, its last valid day and whether it was revoked (core.privacy declares the
table). Revoking keeps the row, so a name is never reused for another token and the
operations trail's ``actor`` keeps meaning one token.
"""

from __future__ import annotations

from typing import Any

from orchestrator.adapters.store.base import StoreBase, stored_date
from orchestrator.core.tokens import ApiToken, stored_scopes
from orchestrator.errors import NotFound, StoreError

_COLUMNS = "name, token_id, secret_hash, scopes, created_on, expires_on, revoked"


def _token(row: tuple[Any, ...]) -> ApiToken:
    created = stored_date(row[4])
    assert created is not None
    return ApiToken(
        name=str(row[0]),
        token_id=str(row[1]),
        secret_hash=str(row[2]),
        scopes=stored_scopes(str(row[3])),
        created_on=created,
        expires_on=stored_date(row[5]),
        revoked=bool(row[6]),
    )


class TokensStore(StoreBase):
    """API tokens: added, found by id, listed, revoked."""

    def add_token(self, token: ApiToken) -> None:
        with self.transaction():
            if self._one("SELECT 1 FROM api_tokens WHERE name = ?", (token.name,)):
                raise StoreError(f"a token named {token.name} exists (revoked ones count too)")
            self.db.execute(
                f"INSERT INTO api_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token.name,
                    token.token_id,
                    token.secret_hash,
                    ",".join(sorted(token.scopes)),
                    token.created_on.isoformat(),
                    token.expires_on.isoformat() if token.expires_on else None,
                    token.revoked,
                ),
            )

    def token_by_id(self, token_id: str) -> ApiToken | None:
        row = self._one(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_id = ?", (token_id,))
        return _token(row) if row else None

    def tokens(self) -> list[ApiToken]:
        return [_token(r) for r in self._rows(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY name")]

    def revoke_token(self, name: str) -> ApiToken:
        """Revoke the named token (again is harmless); return it as it is now."""
        with self.transaction():
            row = self._one(f"SELECT {_COLUMNS} FROM api_tokens WHERE name = ?", (name,))
            if row is None:
                raise NotFound(f"no token named {name}")
            self.db.execute("UPDATE api_tokens SET revoked = ? WHERE name = ?", (True, name))
        token = _token(row)
        return ApiToken(
            token.name,
            token.token_id,
            token.secret_hash,
            token.scopes,
            token.created_on,
            token.expires_on,
            True,
        )
