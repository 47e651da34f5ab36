"""`wgfleet controllers add|list|revoke` on the embedded store: a controller registered by its
own keys or another's public key files, listed with fingerprints, bad input one line and exit
2 with nothing stored, and no controller revoking itself."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.adapters.keyfiles import ensure_ssh_keypair
from orchestrator.cli import main


def _other_keys(directory: Path) -> Path:
    for purpose in ("deploy", "collector", "push"):
        ensure_ssh_keypair(directory / f"{purpose}_ed25519", f"wgfleet-{purpose}")
    return directory


def test_controllers_are_registered_listed_and_a_name_never_reused(
    fresh_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["controllers", "add", "dc1"]) == 0
    captured = capsys.readouterr()
    assert "controller dc1 registered" in captured.out and captured.err == ""
    assert (fresh_data / "keys" / "push_ed25519").stat().st_mode & 0o077 == 0
    other = _other_keys(tmp_path / "dc2-keys")
    assert main(["--json", "controllers", "add", "dc2", "--keys", str(other)]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["state"] == "active" and set(added["fingerprints"]) == {
        "deploy",
        "collector",
        "push",
    }
    assert main(["--json", "controllers", "list"]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)] == ["dc1", "dc2"]
    # The same keys under another name, and another's keys under a taken name: refused.
    assert main(["controllers", "add", "dc3", "--keys", str(other)]) == 2
    assert "already controller dc2's deploy key" in capsys.readouterr().err
    assert main(["controllers", "add", "dc2", "--keys", str(_other_keys(tmp_path / "x"))]) == 1
    assert "dc2 exists" in capsys.readouterr().err
    with sqlite3.connect(fresh_data / "wgfleet.db") as db:
        stored = db.execute("SELECT name, deploy_key FROM controllers").fetchall()
    assert len(stored) == 2 and all("PRIVATE" not in key for _, key in stored)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("push_ed25519.pub", "push_ed25519.pub: not an OpenSSH public key"),
        ("deploy_ed25519.pub", "deploy_ed25519.pub: not an OpenSSH public key"),
    ],
)
def test_a_bad_key_file_is_one_line_and_exit_2_with_nothing_stored(
    fresh_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    broken: str,
    message: str,
) -> None:
    other = _other_keys(tmp_path / "keys")
    (other / broken).write_text("hello there\n", encoding="ascii")
    assert main(["controllers", "add", "dc2", "--keys", str(other)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1
    assert main(["--json", "controllers", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_no_controller_revokes_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    nodes:\n      hosts:\n        node1:\n"
        "          ansible_host: 198.18.0.11\n",
        encoding="ascii",
    )
    config = tmp_path / "settings.yml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ninventory: {tmp_path}\n")
    monkeypatch.setenv("WGFLEET_CONFIG", str(config))
    assert main(["controllers", "add", "dc1"]) == 0
    capsys.readouterr()
    assert main(["--json", "controllers", "revoke", "dc1"]) == 2
    assert "holds this controller's own keys" in capsys.readouterr().err
    assert main(["--json", "controllers", "list"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "active"
