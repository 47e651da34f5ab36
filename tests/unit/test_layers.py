"""The layer contracts (pyproject's [tool.importlinter]) hold, and they do catch a break."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the package as it is in ``tree`` (its pyproject, its sources)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "orchestrator",
        tmp_path / "orchestrator",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # Core reaching an adapter: the pure core would do I/O.
        ("core/quota.py", "from orchestrator.adapters import ssh", "core imports nothing of ours"),
        # A command opening the store itself instead of a session.
        (
            "cli/peers.py",
            "from orchestrator.adapters.store import open_store",
            "UIs import no adapter: they go through service",
        ),
        # A use case reaching up into a UI.
        ("service/sync.py", "from orchestrator.cli import output", "UIs -> service -> adapters"),
        # The TUI and the CLI leaning on each other.
        ("tui/backend.py", "from orchestrator.cli import common", "UIs -> service -> adapters"),
        # Two command modules importing each other's helpers.
        ("cli/plans.py", "from orchestrator.cli import peers", "no cycles between the modules"),
    ],
)
def test_a_deliberate_violation_breaks_its_contract(
    copy: Path, module: str, line: str, broken: str
) -> None:
    path = copy / "orchestrator" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    if module == "cli/plans.py":  # the other half of the cycle
        peers = copy / "orchestrator" / "cli" / "peers.py"
        peers.write_text(peers.read_text() + "\nfrom orchestrator.cli import plans  # noqa\n")
    result = lint(copy)
    assert result.returncode == 1, result.stdout
    lines = [row for row in result.stdout.splitlines() if row.startswith(broken)]
    assert lines and " BROKEN" in lines[0], result.stdout
