"""The node programs as the roles install them (plain files in roles/*/files), for unit tests
on the controller: their paths, their config files, and a way to import one from its path.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

ROLES = Path(__file__).parents[2] / "roles"
COUNTERS = ROLES / "counters_access/files/wgfleet-counters"
NODE_KEY = ROLES / "wireguard_node/files/wgfleet-node-key"
DIAG = ROLES / "diagnostics/files/wgfleet-diag"
EPOCH = ROLES / "wireguard_node/files/wgfleet-epoch"
WG_RELOAD = ROLES / "wireguard_node/files/wgfleet-wg-reload"
PEERS = ROLES / "peers_access/files/wgfleet-peers"
PYTHON_PROGRAMS = (COUNTERS, NODE_KEY, DIAG, PEERS)
SHELL_PROGRAMS = (EPOCH, WG_RELOAD)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """A node program's config file as the deploy leaves it: JSON, mode 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"comment": "test", **config}))
    path.chmod(0o644)
    return path


def load(path: Path, name: str) -> ModuleType:
    """A node program imported from its path (it has no .py suffix), without running main."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
