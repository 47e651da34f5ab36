"""A real, throwaway PostgreSQL server: Debian's binaries, initdb + pg_ctl in a temporary
directory as the unprivileged `postgres` user, listening on a Unix socket only."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ROOT = Path("/usr/lib/postgresql")
PASSWORD_ROLE = "wgfleet_pw"
_counter = itertools.count()


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (the server runs as the postgres user)"
    if pg_bin() is None:
        return "needs Debian's postgresql package"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    return None


def pg_bin() -> Path | None:
    versions = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_postgres(argv: list[str]) -> None:
    subprocess.run(
        ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd="/",
    )


@contextmanager
def throwaway_postgres(*, fsync: bool = False) -> Iterator[str]:
    """Yield a connection URL to a fresh server; stop it and delete its files afterwards."""
    binaries = pg_bin()
    assert binaries is not None, unavailable()
    # Not under pytest's root-only temp tree: the server runs as `postgres` and must reach it.
    base = Path(tempfile.mkdtemp(prefix="wgfleet-pg-"))
    os.chmod(base, 0o755)
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    shutil.chown(base, "postgres", "postgres")
    shutil.chown(sockets, "postgres", "postgres")
    try:
        _as_postgres(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ]
        )
        # One role must log in with its password (the rest of the server trusts the socket),
        # so tests can give wgfleet a store URL that carries a password (password_database).
        hba = data / "pg_hba.conf"
        hba.write_text(
            f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        options = f"-c listen_addresses='' -c unix_socket_directories={sockets} -c fsync={'on' if fsync else 'off'}"
        _as_postgres(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(base / "server.log"),
                "-o",
                options,
                "start",
            ]
        )
        try:
            yield f"postgresql://postgres@/postgres?host={sockets}"
        finally:
            _as_postgres(
                [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def password_database(server: str, password: str) -> str:
    """A fresh database owned by the role that must give its password, and a URL with the
    password in it (as an operator's ``store_url`` would carry it)."""
    import psycopg
    from psycopg import sql

    name = f"wgfleet_pw_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PASSWORD_ROLE,))
        statement = (
            "ALTER ROLE {} LOGIN PASSWORD {}"
            if exists.fetchone()
            else ("CREATE ROLE {} LOGIN PASSWORD {}")
        )
        admin.execute(
            sql.SQL(statement).format(sql.Identifier(PASSWORD_ROLE), sql.Literal(password))
        )
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(PASSWORD_ROLE)
            )
        )
    host = server.split("?host=", 1)[1]
    return f"postgresql://{PASSWORD_ROLE}:{password}@/{name}?host={host}"


def fresh_database(server: str) -> str:
    import psycopg

    name = f"wgfleet_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server.replace("/postgres?", f"/{name}?")


def pg_dump(url: str) -> str:
    """What `pg_dump` writes of the database at ``url`` (as a backup would hold it)."""
    binaries = pg_bin()
    assert binaries is not None, unavailable()
    return subprocess.run(
        [str(binaries / "pg_dump"), "--dbname", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
