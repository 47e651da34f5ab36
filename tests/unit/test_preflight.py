"""Settings are checked before anything is created: a command whose settings (or the
inventory, or the key it rotates) are wrong exits 2 in one line naming the settings file and
line, and leaves no data directory, store, lock or key behind. A closed output pipe ends
quietly with 141."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.errors import ExitCode


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test names its settings file: none comes from the caller's environment."""
    monkeypatch.delenv("WGFLEET_CONFIG", raising=False)


def settings_file(base: Path, more: str = "") -> Path:
    """``base``/settings.yml: the data directory under ``base``, then the lines ``more``."""
    path = base / "settings.yml"
    path.write_text(f"data_dir: {base / 'data'}\n{more}")
    return path


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return settings_file(tmp_path, f"inventory: {tmp_path / 'missing'}\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy"],
        ["deploy", "--check"],
        ["audit"],
        ["diagnose", "node1", "--for", "5m"],
        ["diagnose", "status"],
        ["keys", "rotate", "ssh", "push"],
        ["nodes", "trust", "node1"],
    ],
    ids=" ".join,
)
def test_a_missing_inventory_creates_nothing(
    config: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config), *argv]) == ExitCode.USAGE
    assert capsys.readouterr().err.splitlines() == [
        f"wgfleet: error: {config}:2: inventory: '{config.parent / 'missing'}': no such file or "
        "directory (run `wgfleet lab up` for a lab fleet)"
    ]
    assert sorted(p.name for p in config.parent.iterdir()) == ["settings.yml"]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ("data_dir: {base}/file/data\n", ":1: data_dir: '{base}/file/data': cannot be made: "),
        ("data_dir: {base}/file\n", ":1: data_dir: '{base}/file': exists and is not a directory"),
        (
            "data_dir: {base}/data\nstore_url: mysql://u:secret@db/x\n",
            ":2: store_url: 'mysql:...': expected sqlite:///PATH or postgresql://",
        ),
        (
            "data_dir: {base}/data\nstore_url: sqlite:///{base}\n",
            ":2: store_url: '/{base}': is a directory, not a file",
        ),
        (
            "data_dir: {base}/data\nssh:\n  deploy_key: {base}/file/k\n",
            ":3: ssh.deploy_key: '{base}/file/k': cannot be made: {base}/file is not a directory",
        ),
    ],
)
def test_bad_paths_in_the_settings_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: str, expected: str
) -> None:
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "settings.yml"
    path.write_text(settings.format(base=tmp_path))
    for argv in (["peers", "list"], ["sync"], ["accounts", "list"], ["lab", "status"]):
        assert main(["--config", str(path), *argv]) == ExitCode.USAGE
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith(f"wgfleet: error: {path}{expected.format(base=tmp_path)}")
        assert "secret" not in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "settings.yml"]


def test_rotating_a_key_that_was_never_made_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    node1: {ansible_host: 198.18.0.10}\n")
    path = settings_file(tmp_path, f"inventory: {inventory}\n")
    assert main(["--config", str(path), "keys", "rotate", "ssh", "push"]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"wgfleet: error: {tmp_path / 'data' / 'keys' / 'push_ed25519'} does not exist yet: "
        "deploy first\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory", "settings.yml"]


def test_an_invalid_fleet_file_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = settings_file(tmp_path)
    fleet = tmp_path / "fleet.yml"
    fleet.write_text("version: 1\nversion: 1\n")
    assert main(["--config", str(path), "plan", "-f", str(fleet)]) == ExitCode.FAILED
    assert main(["--config", str(path), "apply", "-f", str(fleet), "--yes"]) == ExitCode.USAGE
    assert main(["--config", str(path), "validate", "-f", str(fleet)]) == ExitCode.USAGE
    assert capsys.readouterr().err.count("fleet.yml:2: version: 'version': given twice") == 3
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("argv", [["schema"], ["--json", "peers", "list"], ["cron", "print"]])
def test_a_closed_output_pipe_ends_quietly_with_141(tmp_path: Path, argv: list[str]) -> None:
    """`wgfleet --json peers list | head -1`, with the reader gone before the first write so
    the result does not depend on the pipe's buffer."""
    config = settings_file(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--config", str(config), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait() == ExitCode.PIPE_CLOSED == 141
    assert stderr == b""


def test_a_pipe_that_takes_the_first_line_sees_it(tmp_path: Path) -> None:
    config = settings_file(tmp_path)
    # `wgfleet schema | head -1`, without a shell between them.
    writer = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None and writer.stderr is not None
    head = subprocess.run(
        ["head", "-1"], stdin=writer.stdout, capture_output=True, text=True, check=True
    )
    writer.stdout.close()  # head's end only: wgfleet sees the pipe closed, as in a shell
    stderr = writer.stderr.read()
    writer.wait(timeout=60)
    assert head.stdout == "{\n" and stderr == b""
