"""Store fixtures: every store test runs on SQLite and on a real, throwaway PostgreSQL server
(see tests/pgserver.py); each PostgreSQL test gets a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.store import SqlStore, open_store
from tests.pgserver import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wgfleet.db'}"
    return fresh_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()
