"""A hostile or broken settings file is refused whole: one line naming the file, the line and
the field, exit 2, before anything is read past its size bound or built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core.input_limits import SETTINGS_MAX_BYTES
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.settings import load_settings
from tests.unit.test_yaml_input import BOMB


def refusal(config: Path, data: bytes) -> str:
    """The one-line ConfigError (exit 2) that loading ``data`` as the settings file ``config``
    raises."""
    config.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    text = str(caught.value)
    assert "\n" not in text, text
    assert caught.value.exit_code == ExitCode.USAGE
    return text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"usage:\n  warn_percent: 50\n  warn_percent: 90\n",
            ":3: (file): 'warn_percent': given twice",
        ),
        (BOMB.encode(), ":2: (file): '*a': aliases are not allowed in this file"),
        (b"usage:\n\twarn_percent: 50\n", ":2: (file): '\\t': a tab in the indentation"),
        (b"lab:\n  name: caf\xe9\n", ":2: (file): b'\\xe9': not UTF-8 text"),
        (b"lab:\n  name: a\x1b[2Jb\n", ":2: (file): '\\x1b': U+001B: control characters"),
        (
            'lab:\n  name: "ab\u202ecd"\n'.encode(),
            ":2: lab.name: 'ab\\u202ecd': must be 1-6 lowercase letters",
        ),
        (b"usage:\n  retention_days: 2026-13-45\n", ":2: (file): '2026-13-45': cannot read it"),
        (b"[" * 10_000 + b"]" * 10_000, ":1: (file): '': not YAML"),
        (b"data_dir: " + b"x" * 100_000 + b"\nbogus: 1\n", ":2: bogus: 1: unknown setting"),
    ],
    ids=[
        "duplicate key",
        "alias bomb",
        "tab",
        "latin-1",
        "control",
        "bidi",
        "bad date",
        "deep",
        "long value",
    ],
)
def test_hostile_settings_are_one_error_naming_the_line(
    tmp_path: Path, data: bytes, message: str
) -> None:
    config = tmp_path / "settings.yml"
    text = refusal(config, data)
    assert text.startswith(f"{config}{message}"), text
    assert len(text) < 600


def test_an_oversize_settings_file_is_refused_by_its_size(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_bytes(b"# " + b"x" * SETTINGS_MAX_BYTES + b"\n")
    with pytest.raises(ConfigError, match=r"larger than 1 MiB, the bound for a settings file"):
        load_settings(config)


def test_a_leading_byte_order_mark_is_fine(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_bytes("\ufeffusage:\n  warn_percent: 50\n".encode())
    assert load_settings(config).usage.warn_percent == 50


def test_the_command_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_bytes(BOMB.encode())
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(config), "peers", "list"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"wgfleet: error: {config}:2: (file): '*a': aliases are not allowed in this file "
        "(write the value out)"
    ]
    assert not (tmp_path / ".local").exists()  # nothing created
