"""The schema's life in a live store: which version it is at, applying the migrations
``schema.py`` defines (and their data steps), and the tables and columns it has now."""

from __future__ import annotations

import ipaddress

from orchestrator.adapters.store.networks import NetworksStore
from orchestrator.adapters.store.schema import IPV6_MIGRATION, LATEST_VERSION, MIGRATIONS
from orchestrator.adapters.store.schema_dialects import statements_for
from orchestrator.core.redaction import redact_url
from orchestrator.errors import StoreError


class MigrationsStore(NetworksStore):
    """Schema version, upgrades and the live schema (its IPv6 data step draws the prefix)."""

    def _has_table(self, name: str) -> bool:
        if self.db.dialect == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = (
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = ?"
            )
        return self._one(sql, (name,)) is not None

    def schema_version(self) -> int:
        if not self._has_table("schema_migrations"):
            return 0
        row = self._one("SELECT MAX(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    def upgrade(
        self, up_to: int | None = None, ipv6_prefix: ipaddress.IPv6Network | None = None
    ) -> list[int]:
        """Apply every migration newer than the store (up to ``up_to``, for tests of a
        migration's data step); return the versions applied. ``ipv6_prefix``: the fleet's
        IPv6 tunnel prefix when this upgrade creates it (None: a random RFC 4193 /48)."""
        with self.transaction():
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, description TEXT NOT NULL)"
            )
            current = self.schema_version()
            applied = []
            for migration in MIGRATIONS:
                if migration.version <= current or (
                    up_to is not None and migration.version > up_to
                ):
                    continue
                for statement in statements_for(migration, self.db.dialect):
                    self.db.execute(statement)
                if migration.version == IPV6_MIGRATION:
                    self._first_ipv6_prefix(ipv6_prefix)
                self.db.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                    (migration.version, migration.description),
                )
                applied.append(migration.version)
        return applied

    def require_current(self) -> None:
        version = self.schema_version()
        if version != LATEST_VERSION:
            raise StoreError(
                f"store {redact_url(self.url)} is at schema version {version}, this wgfleet needs "
                f"{LATEST_VERSION}: run `wgfleet db upgrade`"
            )

    def columns(self) -> dict[str, list[str]]:
        """Every table and its columns, read from the live database."""
        if self.db.dialect == "sqlite":
            tables = [
                r[0] for r in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            return {
                t: [r[1] for r in self._rows(f"PRAGMA table_info({t})")]
                for t in tables
                if not t.startswith("sqlite_")
            }
        rows = self._rows(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
        found: dict[str, list[str]] = {}
        for table, column in rows:
            found.setdefault(table, []).append(column)
        return found
