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


def test_help_lists_the_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for command in ("demo", "config", "lab"):
        assert command in text
    assert "exit codes:" in text and "130  interrupted" in text


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: wgfleet" in capsys.readouterr().out


def test_global_options_work_before_and_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WGFLEET_DATA_DIR", str(tmp_path))
    assert main(["--json", "config", "show"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["config", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["data_dir"] == str(tmp_path)


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
        f"wgfleet: error: {config}: lab.subnet: '192.0.2.0/24': must lie inside 198.18.0.0/16 "
        "(198.19/16 is for tunnels)"
    ]


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_config_show_never_prints_key_material(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.adapters.keyfiles import ensure_ssh_keypair

    monkeypatch.setenv("WGFLEET_DATA_DIR", str(tmp_path))
    ensure_ssh_keypair(tmp_path / "keys" / "deploy_ed25519", "x")
    secret = (tmp_path / "keys" / "deploy_ed25519").read_text()
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert secret.splitlines()[1] not in out
