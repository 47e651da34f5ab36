"""`wgfleet tokens` and `wgfleet serve`'s arguments: the token printed once, only its hash
kept, bad input one line and exit 2 with nothing made."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli import main


def test_a_token_is_printed_once_listed_without_its_secret_and_revoked(
    fresh_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tokens", "add", "billing-backend", "--scope", "billing", "--expires", "30"]) == 0
    captured = capsys.readouterr()
    token = captured.out.strip()
    assert token.startswith("wgf_") and len(token.splitlines()) == 1
    assert captured.err == ""
    secret = token.rsplit("_", 1)[1]
    assert main(["--json", "tokens", "list"]) == 0
    listed = capsys.readouterr().out
    assert secret not in listed
    (row,) = json.loads(listed)
    assert (row["name"], row["scopes"], row["revoked"]) == ("billing-backend", ["billing"], False)
    with sqlite3.connect(fresh_data / "wgfleet.db") as db:
        stored = str(db.execute("SELECT * FROM api_tokens").fetchall())
    assert secret not in stored
    assert main(["tokens", "revoke", "billing-backend"]) == 0
    assert "token billing-backend revoked" in capsys.readouterr().out
    assert main(["--json", "tokens", "list"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["revoked"] is True


def test_json_output_carries_the_token_once(
    fresh_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "tokens", "add", "app", "--scope", "provision,read"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["token"].startswith("wgf_") and made["scopes"] == ["provision", "read"]
    assert made["expires_on"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tokens", "add", "x", "--scope", "admin"], "--scope 'admin': one of billing"),
        (["tokens", "add", "x", "--scope", "read", "--expires", "soon"], "--expires 'soon'"),
        (["tokens", "add", "Bad Name", "--scope", "read"], "token name 'Bad Name'"),
        (["tokens", "revoke", "nobody"], "no token named nobody"),
        (
            ["serve", "--listen", "localhost:8787"],
            "--listen 'localhost:8787': 'localhost' is not an IP address",
        ),
        (["serve", "--listen", "::1:8787"], "an IPv6 address goes in brackets"),
        (["serve", "--listen", "127.0.0.1:0"], "the port must be 1 to 65535"),
        (["serve", "--tls-cert", "/nonexistent/c.pem"], "give both --tls-cert and --tls-key"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    fresh_data: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.splitlines()) == 1
    assert "wgf_" not in captured.out


def test_a_second_token_of_the_same_name_is_refused(
    fresh_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tokens", "add", "app", "--scope", "read"]) == 0
    capsys.readouterr()
    assert main(["tokens", "add", "app", "--scope", "read"]) == 1
    assert "a token named app exists" in capsys.readouterr().err


def test_cron_print_gives_a_systemd_unit_for_serve(
    fresh_data: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["--json", "cron", "print", "--format", "systemd", "--serve", "[::1]:8787"]) == 0
    units = json.loads(capsys.readouterr().out)
    unit = units["wgfleet-serve.service"]
    assert " serve --listen [::1]:8787\n" in unit
    assert "Restart=on-failure" in unit and "NoNewPrivileges=yes" in unit
    assert main(["cron", "print", "--serve", "127.0.0.1:8787"]) == 2
    assert "use --format systemd" in capsys.readouterr().err
    assert main(["cron", "print", "--format", "systemd", "--serve", "host:1"]) == 2
    assert "--serve 'host:1'" in capsys.readouterr().err
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    (tmp_path / "wgfleet-serve.service").write_text(
        unit.replace("ExecStart=", "ExecStart=/bin/true #")
    )
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "wgfleet-serve.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
