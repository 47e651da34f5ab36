"""What every concern of the store shares: the connection, one transaction at a time, reading
rows, and the one conversion every concern needs (a DATE column as read back).

Queries are written once with ``?`` placeholders; the PostgreSQL connection turns them into
``%s``. Every method that writes runs inside :meth:`StoreBase.transaction` (its own when the
caller holds none), so a command either lands whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any, Protocol, Self


class Connection(Protocol):
    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def scrub(self) -> bool: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


def stored_date(value: Any) -> date | None:
    """A DATE column as the engine returns it (SQLite: ISO text, PostgreSQL: a date)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


VALUES_PER_STATEMENT = 300


class StoreBase:
    """The connection and transaction every concern's mixin works through."""

    def __init__(self, connection: Connection, url: str) -> None:
        self.db = connection
        self.url = url
        self._depth = 0
        # Nodes whose revision the open transaction has moved: once is enough (see bump_nodes).
        self._bumped: set[str] = set()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """All writes inside land together or not at all; nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.db.begin()
        self._depth = 1
        self._bumped = set()
        try:
            yield self
        except BaseException:
            self._depth = 0
            self.db.rollback()
            raise
        self._depth = 0
        self.db.commit()

    def scrub(self) -> bool:
        """Make erased rows unrecoverable from the store's files: True when done.

        SQLite overwrites deleted content (secure_delete), but in WAL mode the page images
        that still held it stay in the main file until a checkpoint and in the -wal file until
        it is truncated. A reader holding an old snapshot (the TUI, `sync --every`) blocks
        that: False then, and `wgfleet db scrub` finishes it later. PostgreSQL keeps dead rows
        until VACUUM; its own WAL and backups are the server operator's to expire.
        """
        return self.db.scrub()

    def _upsert(
        self, table: str, key: str, row: Mapping[str, Any], *, keep_if_none: Iterable[str] = ()
    ) -> None:
        """Insert ``row`` (column -> value) into ``table``, or set the row of the same ``key``
        column to it; a column in ``keep_if_none`` keeps its stored value when given None."""
        kept = frozenset(keep_if_none)
        updates = ", ".join(
            f"{c} = COALESCE(excluded.{c}, {table}.{c})" if c in kept else f"{c} = excluded.{c}"
            for c in row
            if c != key
        )
        with self.transaction():
            self.db.execute(
                f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)}) "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}",
                tuple(row.values()),
            )

    @staticmethod
    def _in_chunks(values: Iterable[Any]) -> Iterator[tuple[list[Any], str]]:
        """Sorted distinct ``values`` a statement's worth at a time, with their ``?`` marks:
        SQLite's older builds bind 999 values a statement at most."""
        ordered = sorted(set(values))
        for first in range(0, len(ordered), VALUES_PER_STATEMENT):
            chunk = ordered[first : first + VALUES_PER_STATEMENT]
            yield chunk, ", ".join("?" for _ in chunk)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.db.execute(sql, params)
        return rows[0] if rows else None
