"""SQLite connection: WAL, synchronous=FULL, foreign keys on, secure_delete so erased rows
do not linger in free pages."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator.errors import StoreError


def create_owner_only(path: str) -> None:
    """The store holds account data: only its owner may read it, WAL and shm included. The
    main file is made 0600 (without following a link) before SQLite opens it, and SQLite gives
    its WAL, shm and journal files the main file's mode. Not a umask: it is the process's, and
    two threads opening stores at once (the TUI's workers) restored each other's 077, which
    then stayed: every file the process made later, a lab node's included, was owner-only.

    An existing file is never opened here: closing any descriptor of the database file drops
    every POSIX lock this process holds on it, the SHARED lock of each open WAL connection
    (the server's request threads) included. Another process closing its last connection then
    took itself for the last one and deleted the WAL, and the commits made into it were lost,
    each answered as done (tests/store/test_sqlite_files.py; sqlite.org/howtocorrupt.html 2.2)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        # O_EXCL fails on a link as on a file: a link is refused without opening anything.
        if os.path.islink(path):
            raise StoreError(f"cannot open SQLite store {path}: a symbolic link") from None
        return
    except OSError as exc:
        raise StoreError(f"cannot open SQLite store {path}: {exc.strerror}") from None
    os.close(fd)


class SqliteConnection:
    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            create_owner_only(path)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            for pragma in (
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA secure_delete = ON",
                # Sorts and temporary tables may hold account data: never in a temp file.
                "PRAGMA temp_store = MEMORY",
            ):
                self._db.execute(pragma)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {path}: {exc}") from None
        self.path = path

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"store refused the change: {exc}") from None
        except sqlite3.OperationalError as exc:
            raise StoreError(f"store error: {exc}") from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._db.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"store refused the change: {exc}") from None

    def scrub(self, attempts: int = 20) -> bool:
        for _ in range(attempts):
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
            time.sleep(0.1)
        return False

    def begin(self) -> None:
        # IMMEDIATE takes the write lock now, so two writers queue instead of failing late.
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


# Dates as ISO text (booleans are ints already): what the schema's DATE means in SQLite.
# Registered once, so executemany of 100,000 rows adapts values in C, not in a Python loop.
sqlite3.register_adapter(date, date.isoformat)


def connect_sqlite(path: str) -> SqliteConnection:
    return SqliteConnection(path)
