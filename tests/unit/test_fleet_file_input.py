"""Hostile fleet files are refused whole with one line per error naming file, line, field and
value: YAML tricks, oversize files (by their size, before reading), encodings, node names
that would become host patterns or file names, amounts past 64 bits, non-ASCII digits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from orchestrator.core.fleetfile import FleetFileInvalid, parse_fleet_file
from orchestrator.core.input_limits import FLEET_FILE_MAX_BYTES, MAX_BYTES
from orchestrator.core.units import parse_size
from orchestrator.errors import ConfigError, ExitCode, WgfleetError
from orchestrator.service import fleet_file
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings
from tests.unit.test_yaml_input import BOMB

KEY = "x" * 42 + "A="
E = TypeVar("E", bound=Exception)
HEAD = "version: 1\naccounts:\n  ops: {device_id: d}\n"


def config(nodes: str, extra: str = "") -> str:
    return (
        HEAD + f"configurations:\n  - {{name: c, account: ops, nodes: {nodes}, "
        f'public_key: "{KEY}"{extra}}}\n'
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nversion: 1\n", "f.yml:2: version: 'version': given twice"),
        (BOMB, "f.yml:2: (file): '*a': aliases are not allowed in this file"),
        ("version: 1\nplans:\n\tb: {quota: 1}\n", "f.yml:3: (file): '\\t': a tab in the"),
        ("version: 1\nnodes:\n  all: {}\n", "f.yml:3: nodes.all: 'all': 'all' is Ansible's own"),
        ("version: 1\nnodes:\n  '-x': {}\n", "f.yml:3: nodes.-x: '-x': a node name is 1-63"),
        (
            'version: 1\nnodes:\n  "a\\u202eb": {}\n',
            "f.yml:3: nodes.a\\u202eb: 'a\\u202eb': a node name is",
        ),
        (
            'version: 1\nnodes:\n  "n1\\n": {}\n',
            "f.yml:3: nodes.n1\\n: 'n1\\n': a node name is",
        ),
        (config('["n1;reboot"]'), "f.yml:5: configurations.c.nodes: 'n1;reboot': a node name"),
        (config("[n1, [x]]"), "f.yml:5: configurations.c.nodes: ['x']: a node name"),
        (config("[localhost]"), "f.yml:5: configurations.c.nodes: 'localhost': 'localhost' is"),
        (
            "version: 1\nplans:\n  big: {quota: 999999999999999TiB}\n",
            "f.yml:3: plans.big.quota: '999999999999999TiB': at most 9223372036854775807 bytes",
        ),
        (
            f"version: 1\nplans:\n  big: {{quota: {MAX_BYTES + 1}}}\n",
            "f.yml:3: plans.big.quota: 9223372036854775808: at most 9223372036854775807",
        ),
        (config("[n1]", ", quota: 9999999TB"), "f.yml:5: configurations.c.quota: '9999999TB'"),
        (
            'version: 1\nplans:\n  b: {quota: "\\u0661\\u0662GiB"}\n',
            "f.yml:3: plans.b.quota: '\u0661\u0662GiB': a size such as",
        ),
        (
            'version: 1\nplans:\n  b: {quota: "\uff11GiB"}\n',
            "f.yml:3: plans.b.quota: '\uff11GiB'",
        ),
        (
            'version: 1\nplans:\n  b: {quota: 1, price: "\\u0664.99"}\n',
            "f.yml:3: plans.b.price: '\u0664.99': a decimal amount",
        ),
        (
            'version: 1\npolicies:\n  sync_interval: "\\u0665m"\n',
            "f.yml:3: policies.sync_interval: '\u0665m': a duration",
        ),
        (
            'version: 1\nplans:\n  "basic\\n": {quota: 1}\n',
            "f.yml:3: plans.basic\\n: 'basic\\n': use lowercase letters",
        ),
        (
            f"version: 1\naccounts:\n  ops: {{device_id: {'d' * 300}}}\n",
            "f.yml:3: accounts.ops.device_id: '" + "d" * 160 + "'... (300 characters): at most 255",
        ),
        ("version: 1\nplans:\n  b: {quota: 2026-13-45}\n", "f.yml:3: plans.b.quota: '2026-13-45'"),
    ],
    ids=lambda value: value[:30].replace("\n", "|") if isinstance(value, str) else None,
)
def test_hostile_fleet_files_name_file_line_field_and_value(text: str, expected: str) -> None:
    with pytest.raises(FleetFileInvalid) as raised:
        parse_fleet_file(text, "f.yml")
    lines = [str(e) for e in raised.value.errors]
    assert any(line.startswith(expected) for line in lines), lines
    assert all("\n" not in line and len(line) < 600 for line in lines)


def test_sizes_stay_inside_64_bits() -> None:
    assert parse_size("8388607TiB") == 8388607 * 2**40
    assert parse_size(MAX_BYTES) == MAX_BYTES
    for bad in ("8388608TiB", MAX_BYTES + 1, "\u0661GiB", "1\u2003GiB", "1GiB\n"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_an_oversize_fleet_file_is_refused_by_its_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    with path.open("wb") as handle:  # 50 MB, sparse: reading it would take minutes
        handle.truncate(50 * 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(ConfigError) as raised:
        fleet_file.read_fleet_file(path)
    assert time.monotonic() - started < 5  # not a timing claim: it must not read 50 MB of YAML
    assert str(raised.value) == (
        f"{path}: (file): '52428800 bytes': larger than 4 MiB, the bound for a fleet file; not read"
    )
    assert raised.value.exit_code == ExitCode.USAGE


def test_a_fleet_file_just_inside_the_bound_is_read(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    text = "version: 1\n"
    path.write_text(text + "#" * (FLEET_FILE_MAX_BYTES - len(text) - 1) + "\n")
    assert fleet_file.read_fleet_file(path)[0].nodes == ()


def refused(path: Path, data: bytes, read: Callable[[Path], object], error: type[E]) -> E:
    """What ``read`` raises on ``data`` written to ``path``: an ``error`` with exit code 2."""
    path.write_bytes(data)
    with pytest.raises(error) as raised:
        read(path)
    assert isinstance(raised.value, WgfleetError) and raised.value.exit_code == ExitCode.USAGE
    return raised.value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"version: 1\n# caf\xe9\n", ":2: (file): b'\\xe9': not UTF-8 text"),
        (b"version: 1\nnodes: {}\x00\n", ":2: (file): '\\x00': U+0000: control characters"),
    ],
)
def test_non_text_fleet_files_are_one_error_exit_2(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    path = tmp_path / "fleet.yml"
    refusal = refused(path, data, fleet_file.read_fleet_file, fleet_file.FleetFileRejected)
    assert str(refusal).startswith(f"{path}{expected}")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000, "not a saved plan"),
        (b'{"format": "wgfleet-plan/1", "file": ["x"]}', "file: ['x']: not what"),
        (b'{"format": "wgfleet-plan/1", "file": "f.yml", "file_sha256": 1}', "file_sha256: 1"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "not a saved plan"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_a_broken_saved_plan_is_refused_whole(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    refusal = refused(tmp_path / "plan.json", content, fleet_file.load_saved_plan, ConfigError)
    assert expected in str(refusal)


def wgfleet(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def test_validate_plan_and_apply_refuse_a_hostile_file_in_one_line_each(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.yml"
    path.write_text('version: 1\nnodes:\n  "a\\u202eb": {}\nplans:\n  big: {quota: 99999999TiB}\n')
    with open_fleet(settings) as fleet:
        before = fleet.store.plans(), fleet.store.policies()
    expected = [
        f"wgfleet: error: {path}:3: nodes.a\\u202eb: 'a\\u202eb': a node name is 1-63 lowercase "
        "letters, digits, '.', '_' or '-', starting with a letter or digit, and not all, "
        "ungrouped or localhost",
        f"wgfleet: error: {path}:5: plans.big.quota: '99999999TiB': at most "
        "9223372036854775807 bytes (8 EiB)",
    ]
    env = {"WGFLEET_CONFIG": os.environ["WGFLEET_CONFIG"]}
    for argv, code in (
        (["validate", "-f", str(path)], ExitCode.USAGE),
        (["plan", "-f", str(path)], ExitCode.FAILED),  # plan: 2 means "changes pending"
        (["apply", "-f", str(path), "--yes"], ExitCode.USAGE),
    ):
        result = wgfleet(*argv, env=env)
        assert result.returncode == code, result.stderr
        assert result.stderr.splitlines() == expected
        assert "Traceback" not in result.stderr
    with open_fleet(settings) as fleet:
        assert (fleet.store.plans(), fleet.store.policies()) == before
