"""Store fixtures: every store test runs on SQLite and on a real, throwaway PostgreSQL server.

The PostgreSQL server is Debian's, started with initdb + pg_ctl in a temporary directory as the
unprivileged `postgres` user, listening on a Unix socket only; each test gets a fresh database.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.store import SqlStore, open_store

PG_ROOT = Path("/usr/lib/postgresql")
_counter = itertools.count()


def pg_bin() -> Path | None:
    versions = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_postgres(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    binaries = pg_bin()
    if binaries is None or os.geteuid() != 0:
        pytest.skip("needs root and Debian's postgresql package")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user")
    # Not under pytest's root-only temp tree: the server runs as `postgres` and must reach it.
    base = Path(tempfile.mkdtemp(prefix="wgfleet-pg-"))
    os.chmod(base, 0o755)
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    shutil.chown(base, "postgres", "postgres")
    shutil.chown(sockets, "postgres", "postgres")
    _as_postgres(
        [str(binaries / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "-E", "UTF8"]
    )
    _as_postgres(
        [
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(base / "server.log"),
            "-o",
            f"-c listen_addresses='' -c unix_socket_directories={sockets} -c fsync=off",
            "start",
        ]
    )
    try:
        yield f"postgresql://postgres@/postgres?host={sockets}"
    finally:
        _as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def fresh_postgres_url(server: str) -> str:
    import psycopg

    name = f"wgfleet_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server.replace("/postgres?", f"/{name}?")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wgfleet.db'}"
    return fresh_postgres_url(request.getfixturevalue("postgres_server"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()
