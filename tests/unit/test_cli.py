from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import build_parser, main


def leaf_commands() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(parser, prefix: list[str]) -> None:
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            found.append(prefix)
            return
        for name, sub in subs[0].choices.items():
            walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return found


def parser_exit(argv: list[str]) -> int | str | None:
    """The code argparse exits with on ``argv`` (after its help, or on a usage error)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code


@pytest.fixture
def data_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default settings with the data directory in ``tmp_path``."""
    monkeypatch.setenv("WGFLEET_DATA_DIR", str(tmp_path))
    return tmp_path


def test_help_lists_the_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser_exit(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("demo", "config", "lab"):
        assert command in text
    assert "exit codes:" in text and "130  interrupted" in text


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert parser_exit([*command, "--help"]) == 0
    assert "usage: wgfleet" in capsys.readouterr().out


def test_global_options_work_before_and_after_the_command(
    data_in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "config", "show"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["config", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["data_dir"] == str(data_in_tmp)


def test_bad_settings_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_text("lab:\n  subnet: 192.0.2.0/24\n")
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "config", "show"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"wgfleet: error: {config}:2: lab.subnet: '192.0.2.0/24': must lie inside 198.18.0.0/16 "
        "(198.19/16 is for tunnels)"
    ]


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser_exit(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_config_show_never_prints_key_material(
    data_in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.adapters.keyfiles import ensure_ssh_keypair

    ensure_ssh_keypair(data_in_tmp / "keys" / "deploy_ed25519", "x")
    secret = (data_in_tmp / "keys" / "deploy_ed25519").read_text()
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert secret.splitlines()[1] not in out


def test_keys_status_on_an_empty_fleet(
    fresh_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--json", "keys", "status", "--check"]) == 0
    assert json.loads(capsys.readouterr().out) == {"keys": [], "overdue": 0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "rotate", "psk", "--out", "-"], "name configurations or give --node, not both"),
        (["keys", "rotate", "peer", "nobody-1", "--out", "-"], "no configuration 'nobody-1'"),
        (["keys", "rotate", "peer", "x", "--grace", "1w"], "--grace: '1w' is not a duration"),
        (["keys", "rotate", "node", "node9", "--overlap"], "no node(s) node9 in the store"),
        (["keys", "finish", "node9"], "no node(s) node9 in the store"),
    ],
)
def test_key_commands_refuse_bad_input_with_exit_2(
    fresh_data: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_key_settings_name_the_field(tmp_path: Path) -> None:
    from orchestrator.errors import ConfigError
    from orchestrator.settings import settings_from_mapping

    with pytest.raises(ConfigError, match=r"keys.grace: '2 weeks'.*not a duration"):
        settings_from_mapping({"keys": {"grace": "2 weeks"}}, "f.yml", tmp_path)
    with pytest.raises(ConfigError, match=r"keys.node_max_age_days: 1.5: a whole number"):
        settings_from_mapping({"keys": {"node_max_age_days": 1.5}}, "f.yml", tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "--shard", "5/4"], "--shard: shard '5/4': I must be between 1 and N"),
        (["sync", "--shard", "x"], "--shard: shard 'x': expected I/N, for example 1/4"),
        (["sync", "--every", "soon"], "--every: 'soon' is not a duration"),
        (["sync", "--every", "0"], "--every: give an interval of at least 1s"),
        (["sync", "--every", "1m", "--nodes", "a"], "--every syncs the whole fleet"),
        (["apply", "-f", "fleet.yml", "--shard", "1/2"], "--shard pushes the store's state"),
    ],
)
def test_bad_shard_or_interval_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    config = tmp_path / "settings.yml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ninventory: {tmp_path / 'inventory'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr


def test_a_bad_collector_key_exchange_is_named(tmp_path: Path) -> None:
    from orchestrator.errors import ConfigError
    from orchestrator.settings import settings_from_mapping

    with pytest.raises(ConfigError, match=r"ssh\.collector_kex: 'sntrup'"):
        settings_from_mapping({"ssh": {"collector_kex": "sntrup"}}, "s.yml", tmp_path)


def test_an_account_export_then_delete_then_export_fails_cleanly(
    fresh_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.core.models import Account
    from orchestrator.service.context import open_fleet
    from orchestrator.settings import load_settings

    with open_fleet(load_settings(None)) as fleet:
        fleet.store.add_account(Account("quill", "scrypt$q", "dev-q", contact="+15550142"))
    assert main(["accounts", "export", "quill"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["account"]["username"] == "quill"
    assert exported["account"]["contact"] == "+15550142"
    assert exported["configurations"] == [] and exported["topups"] == []
    target = fresh_data / "quill.json"
    assert main(["accounts", "export", "quill", "-o", str(target)]) == 0
    assert json.loads(target.read_text()) == exported
    assert target.stat().st_mode & 0o777 == 0o600
    assert main(["accounts", "delete", "quill", "--yes"]) == 0
    capsys.readouterr()
    assert main(["accounts", "export", "quill"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "wgfleet: error: no account 'quill'"
