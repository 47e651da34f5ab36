"""The pure core imports nothing that does I/O on the fleet's behalf, and no UI library."""

from __future__ import annotations

import ast
from pathlib import Path

import orchestrator.core

FORBIDDEN = (
    "orchestrator.adapters",
    "orchestrator.service",
    "orchestrator.cli",
    "orchestrator.tui",
    "textual",
    "rich",
    "paramiko",
    "ansible_runner",
    "ansible",
    "sqlite3",
    "psycopg",
    "subprocess",
    "socket",
    "prometheus_client",  # metrics are exposed by service/metrics.py; core only shapes them
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("." * node.level + (node.module or ""))
    return found


def test_core_imports_no_adapter_service_or_ui() -> None:
    core = Path(orchestrator.core.__file__).parent
    files = sorted(core.rglob("*.py"))
    assert files
    offenders = []
    for path in files:
        for module in imported_modules(path):
            if module.startswith(".."):
                offenders.append(f"{path.name}: imports outside core ({module})")
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN):
                offenders.append(f"{path.name}: {module}")
    assert offenders == []


def test_the_guard_itself_catches_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import paramiko\nfrom orchestrator.adapters import ssh\nfrom ..service import x\n"
    )
    assert imported_modules(bad) == {"paramiko", "orchestrator.adapters", "..service"}
