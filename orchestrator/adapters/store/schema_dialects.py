"""How a migration's statements read in each engine: the few words SQLite and PostgreSQL
spell differently are placeholders in schema.py, filled in here."""

from __future__ import annotations

from orchestrator.adapters.store.schema import ID_PLACEHOLDER, Migration

_DIALECT_WORDS = {
    "sqlite": {
        ID_PLACEHOLDER: "INTEGER PRIMARY KEY AUTOINCREMENT",
        "{line_agg}": "group_concat",
        "{tab}": "char(9)",
        "{newline}": "char(10)",
    },
    "postgresql": {
        ID_PLACEHOLDER: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "{line_agg}": "string_agg",
        "{tab}": "chr(9)",
        "{newline}": "chr(10)",
    },
}


_ONLY = "{postgresql_only}"  # a statement PostgreSQL needs and SQLite has no syntax for


def statements_for(migration: Migration, dialect: str) -> list[str]:
    words = _DIALECT_WORDS[dialect]
    statements = []
    for statement in migration.statements:
        if statement.startswith(_ONLY):
            if dialect != "postgresql":
                continue
            statement = statement.removeprefix(_ONLY)
        for placeholder, word in words.items():
            statement = statement.replace(placeholder, word)
        statements.append(" ".join(statement.split()))
    return statements
