"""The embedded store's files are the owner's alone, and opening a store leaves the process's
umask alone (it is shared by every thread: the TUI's workers open stores at once)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from orchestrator.adapters.store import sqlite
from orchestrator.errors import StoreError


def test_main_wal_and_shm_files_are_the_owners_alone_under_a_permissive_umask(
    tmp_path: Path,
) -> None:
    previous = os.umask(0o022)
    try:
        connection = sqlite.connect_sqlite(str(tmp_path / "wgfleet.db"))
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
        connection.close()
    finally:
        os.umask(previous)
    assert modes == {"wgfleet.db": 0o600, "wgfleet.db-wal": 0o600, "wgfleet.db-shm": 0o600}


def test_threads_opening_stores_at_once_leave_the_umask_as_it_was(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    start = threading.Barrier(8)

    def open_close(index: int) -> None:
        start.wait()
        for round_ in range(20):
            sqlite.connect_sqlite(str(tmp_path / f"s{index}-{round_}.db")).close()

    try:
        threads = [threading.Thread(target=open_close, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        left = os.umask(previous)
    assert left == 0o022


def test_a_store_path_that_is_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    (tmp_path / "wgfleet.db").symlink_to(elsewhere)
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        sqlite.connect_sqlite(str(tmp_path / "wgfleet.db"))
    assert not elsewhere.exists()


def test_opening_a_store_keeps_the_wal_of_a_connection_this_process_holds_open(
    tmp_path: Path,
) -> None:
    """A second connection in this process (a server thread's) must not drop the first one's
    locks: else another process closing its connection deletes the WAL, and the first
    connection's next commit lands in a deleted file, reported as done but lost."""
    path = str(tmp_path / "wgfleet.db")
    held = sqlite.connect_sqlite(path)
    held.execute("CREATE TABLE t (x)")
    held.execute("INSERT INTO t VALUES (1)")
    sqlite.connect_sqlite(path).close()
    other_process = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(c.execute('SELECT count(*) FROM t').fetchone()[0]); c.close()"
    )
    subprocess.run([sys.executable, "-c", other_process, path], check=True)
    held.execute("INSERT INTO t VALUES (2)")
    seen = subprocess.run(
        [sys.executable, "-c", other_process, path], check=True, capture_output=True, text=True
    )
    held.close()
    assert seen.stdout == "2\n"
