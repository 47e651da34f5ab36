"""Every program that runs on a node is a plain file in its role's files/, checked like the
package: listed for ruff and mypy in .ci/test, nothing rendered into it, and each Python one
refuses a config it cannot trust with one line naming the file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.node_programs import (
    DIAG,
    NODE_KEY,
    PYTHON_PROGRAMS,
    ROLES,
    SHELL_PROGRAMS,
)

ROOT = ROLES.parent


def ci_node_programs() -> list[str]:
    text = (ROOT / ".ci/test").read_text()
    block = re.search(r"^node_programs=\(\n?(.*?)\)$", text, re.M | re.S)
    assert block is not None
    return block.group(1).split()


def test_every_file_of_a_role_is_a_known_node_program() -> None:
    shipped = {path for path in ROLES.glob("*/files/*") if path.is_file()}
    assert shipped == set(PYTHON_PROGRAMS) | set(SHELL_PROGRAMS)


def test_every_python_node_program_is_linted_and_type_checked() -> None:
    listed = ci_node_programs()
    assert sorted(listed) == sorted(str(p.relative_to(ROOT)) for p in PYTHON_PROGRAMS)
    # mypy names an extensionless file __main__: the first is checked with the package
    # (pyproject's files), each other one in a run of its own.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"{listed[0]}"' in pyproject
    assert 'for program in "${node_programs[@]:1}"' in (ROOT / ".ci/test").read_text()


@pytest.mark.parametrize("program", PYTHON_PROGRAMS + SHELL_PROGRAMS, ids=lambda p: p.name)
def test_node_programs_are_executable_plain_files(program: Path) -> None:
    text = program.read_text()
    assert text.startswith(("#!/usr/bin/python3\n", "#!/bin/sh\n", "#!/bin/bash\n"))
    assert "{{" not in text and "{%" not in text and "ansible_managed" not in text
    assert program.stat().st_mode & 0o111 == 0o111


def test_no_template_holds_a_program() -> None:
    """Templates are configuration: the one with a #! line is nftables' ruleset."""
    with_shebang = [
        str(path.relative_to(ROLES))
        for path in ROLES.glob("*/templates/**/*.j2")
        if path.read_text().startswith("#!")
    ]
    assert with_shebang == ["wireguard_node/templates/nftables.conf.j2"]


@pytest.mark.parametrize(
    ("program", "variable", "valid"),
    [
        (
            NODE_KEY,
            "WGFLEET_NODE_KEY_CONFIG",
            {"wireguard_dir": "/w", "epoch_dir": "/r", "epoch_script": "/bin/true"},
        ),
        (
            DIAG,
            "WGFLEET_DIAG_CONFIG",
            {
                "run_dir": "/r",
                "max_seconds": 60,
                "view_interval": 1,
                "wg_binary": "/wg",
                "program": "/p",
            },
        ),
    ],
    ids=["wgfleet-node-key", "wgfleet-diag"],
)
def test_a_config_it_cannot_trust_is_refused_naming_the_file(
    tmp_path: Path, program: Path, variable: str, valid: dict[str, object]
) -> None:
    config = tmp_path / "config.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    env[variable] = str(config)
    argv = [sys.executable, str(program), "wg0", "public"]
    if program == DIAG:
        argv = [sys.executable, str(program), "status"]
    first_field = next(iter(valid))
    cases = {
        "cannot be read": None,
        "writable by group or others": (valid, 0o666),
        "not ASCII JSON": ("{", 0o644),
        "not a JSON object": ([], 0o644),
        f"{first_field}: 'relative'": ({**valid, first_field: "relative"}, 0o644),
    }
    for problem, content in cases.items():
        config.unlink(missing_ok=True)
        if content is not None:
            data, mode = content
            config.write_text(data if isinstance(data, str) else json.dumps(data))
            config.chmod(mode)
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        assert done.returncode == 2, (problem, done.stdout, done.stderr)
        assert f"config {config}" in done.stdout and problem in done.stdout, done.stdout
