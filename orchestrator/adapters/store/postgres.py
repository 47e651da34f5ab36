"""PostgreSQL connection through psycopg 3."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orchestrator.core.redaction import (
    database_target,
    redact_text,
    redact_url,
    url_problem,
    url_secrets,
)
from orchestrator.errors import (
    ConfigError,
    EnvironmentProblem,
    StoreConflict,
    StoreError,
    StoreUnreachable,
)


def _connection_problem(url: str, exc: Exception) -> str:
    """libpq's reason in one line, with every form of the URL's password taken out (libpq
    quotes the parts of a URL it cannot read, the password among them)."""
    text = redact_text(str(exc), url_secrets(url))
    first = " ".join(text.strip().splitlines()[:1]) or type(exc).__name__
    # "connection failed: connection to server at ... failed: FATAL:  <reason>": the server
    # is named by the caller already; keep the last reason.
    reason = first.rsplit(" failed: ", 1)[-1].removeprefix("connection is bad: ")
    return " ".join(reason.removeprefix("FATAL:").split())


class PostgresConnection:
    dialect = "postgresql"

    def __init__(self, url: str, *, source: str = "settings") -> None:
        try:
            import psycopg
        except ImportError:
            raise EnvironmentProblem("psycopg is not installed: run .ci/install") from None
        self._psycopg = psycopg
        if problem := url_problem(url):
            raise ConfigError(source, "store_url", redact_url(url), problem)
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.ProgrammingError as exc:  # libpq cannot read the URL
            raise ConfigError(
                source, "store_url", redact_url(url), _connection_problem(url, exc)
            ) from None
        except psycopg.Error as exc:
            raise StoreUnreachable(
                f"cannot use the PostgreSQL store ({database_target(url)}): "
                f"{_connection_problem(url, exc)}"
            ) from None
        self._tx: Any = None

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _error(self, exc: Exception) -> StoreError:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        errors = self._psycopg.errors
        if isinstance(exc, errors.DeadlockDetected | errors.SerializationFailure):
            return StoreConflict(f"store conflict, retry: {first}")
        if isinstance(exc, errors.IntegrityError):
            return StoreError(f"store refused the change: {first}")
        return StoreError(f"store error: {first}")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            cursor = self._db.execute(self._sql(sql), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []
        except self._psycopg.Error as exc:
            raise self._error(exc) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._db.cursor() as cursor:
                cursor.executemany(self._sql(sql), [tuple(r) for r in rows])
        except self._psycopg.Error as exc:
            raise self._error(exc) from None

    def scrub(self) -> bool:
        """VACUUM the tables that hold account data, so dead rows are reclaimed now."""
        tables = ("accounts", "configurations", "configuration_nodes", "usage_totals", "topups")
        try:
            for table in (*tables, "node_counters", "pending_removals"):
                self._db.execute(f"VACUUM {table}")
        except self._psycopg.Error as exc:
            raise self._error(exc) from None
        return True

    def begin(self) -> None:
        self._db.execute("BEGIN")

    def commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except self._psycopg.Error as exc:
            raise self._error(exc) from None

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def close(self) -> None:
        self._db.close()


def connect_postgres(url: str, *, source: str = "settings") -> PostgresConnection:
    return PostgresConnection(url, source=source)
