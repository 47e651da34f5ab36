"""A PostgreSQL store reached with a password (a real server, scram-sha-256): a wrong password,
a missing database or a server that went away is exit 4 in one line naming the server and the
database, and the password is in no output, error line or lease connection's error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.pgserver import password_database

PASSWORD = "Cn4ryPgPw-5150"


def _wgfleet(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "settings.yml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nstore_url: '{url}'\n")
    return config


def test_a_password_store_works_and_its_password_is_never_shown(
    postgres_server: str, tmp_path: Path
) -> None:
    url = password_database(postgres_server, PASSWORD)
    config = _config(tmp_path, url)
    outputs = []
    for argv in (
        ("db", "upgrade"),
        ("--json", "db", "upgrade"),
        ("config", "show"),
        ("--json", "config", "show"),
        ("db", "scrub"),
        ("--json", "peers", "list"),
        ("accounts", "export", "nobody"),
    ):
        result = _wgfleet(config, *argv)
        assert result.returncode == (2 if "export" in argv else 0), result.stderr
        outputs.append(result.stdout + result.stderr)
    assert all(PASSWORD not in text for text in outputs)
    assert "postgresql://wgfleet_pw:***@/" in outputs[0] + outputs[1] + outputs[2]


@pytest.mark.parametrize("fault", ["wrong password", "no such database", "no server"])
def test_a_store_that_refuses_or_is_gone_is_exit_4_in_one_line(
    postgres_server: str, tmp_path: Path, fault: str
) -> None:
    url = password_database(postgres_server, PASSWORD)
    database = url.split("@/", 1)[1].split("?", 1)[0]
    socket = url.split("?host=", 1)[1]
    if fault == "wrong password":
        url = url.replace(PASSWORD, PASSWORD[::-1])
        reason = 'password authentication failed for user "wgfleet_pw"'
    elif fault == "no such database":
        url = url.replace(f"/{database}?", "/no_such_db?")
        database, reason = "no_such_db", 'database "no_such_db" does not exist'
    else:
        url = url.replace(f"?host={socket}", f"?host={tmp_path}")
        socket, reason = str(tmp_path), "No such file or directory"
    for argv in (("peers", "list"), ("db", "upgrade"), ("--json", "sync")):
        result = _wgfleet(_config(tmp_path, url), *argv)
        assert result.returncode == 4, result.stderr
        assert result.stdout == ""
        assert result.stderr == (
            f"wgfleet: error: cannot use the PostgreSQL store (database {database!r} on "
            f"{socket}): {reason}\n"
        )
        assert PASSWORD not in result.stderr and PASSWORD[::-1] not in result.stderr
