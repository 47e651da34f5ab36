"""A PostgreSQL copy of a SQLite store, row for row, for lab tests that need the session lab's
fleet (its nodes, configurations, sealed preshared keys and fleet key) on a real PostgreSQL
while the lab itself keeps its embedded store. Both stores are at the same schema version, so
every table has the same columns; only SQLite's 0/1 booleans need converting, and the copied
ids are set explicitly (the identity sequences then continue after them)."""

from __future__ import annotations

from orchestrator.adapters.store import SqlStore, open_store

_VERSIONS = "schema_migrations"  # written by upgrade() on both sides


def _tables(store: SqlStore) -> list[str]:
    rows = store.db.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
    )
    return [str(name) for (name,) in rows if name != _VERSIONS]


def _copy_table(source: SqlStore, target: SqlStore, table: str) -> int:
    columns = target.db.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    names = [str(name) for name, _ in columns]
    booleans = {i for i, (_, kind) in enumerate(columns) if kind == "boolean"}
    listed = ", ".join(names)
    rows = source.db.execute(f"SELECT {listed} FROM {table}")
    target.db.execute(f"DELETE FROM {table}")  # what the target's own upgrade seeded
    insert = (
        f"INSERT INTO {table} ({listed}) OVERRIDING SYSTEM VALUE "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    for row in rows:
        target.db.execute(
            insert,
            [bool(v) if i in booleans and v is not None else v for i, v in enumerate(row)],
        )
    if "id" in names:  # an identity column continues after the copied ids (NULL: none here)
        target.db.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table} "
            "HAVING MAX(id) IS NOT NULL"
        )
    return len(rows)


def copy_to_postgresql(source_url: str, target_url: str) -> dict[str, int]:
    """Every row of the SQLite store at ``source_url`` into the (fresh) PostgreSQL database at
    ``target_url``, in one transaction; return the rows copied per table."""
    source, target = open_store(source_url), open_store(target_url)
    try:
        target.upgrade()
        assert source.db.dialect == "sqlite" and target.db.dialect == "postgresql"
        assert source.schema_version() == target.schema_version()
        with target.transaction():
            # Foreign keys are checked by triggers, which a replica session skips: the rows
            # land table by table in any order, whole, and the copy is consistent at the end.
            target.db.execute("SET LOCAL session_replication_role = replica")
            return {table: _copy_table(source, target, table) for table in _tables(target)}
    finally:
        source.close()
        target.close()
