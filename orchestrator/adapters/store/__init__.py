"""The quota store: SQLite embedded by default, PostgreSQL for a provider that outgrows it."""

from __future__ import annotations

from orchestrator.adapters.store.sql import RowUsage, SqlStore, SyncLedger
from orchestrator.core.redaction import redact_url
from orchestrator.errors import ConfigError

__all__ = ["RowUsage", "SqlStore", "SyncLedger", "open_store"]


def open_store(url: str, *, source: str = "settings") -> SqlStore:
    """Open the store named by ``url`` (``sqlite:///PATH`` or ``postgresql://...``)."""
    if url.startswith("sqlite:///"):
        from orchestrator.adapters.store.sqlite import connect_sqlite

        return SqlStore(connect_sqlite(url.removeprefix("sqlite://")), url)
    if url.startswith(("postgresql://", "postgres://")):
        from orchestrator.adapters.store.postgres import connect_postgres

        return SqlStore(connect_postgres(url, source=source), url)
    raise ConfigError(
        source, "store_url", redact_url(url), "expected sqlite:///PATH or postgresql://..."
    )
