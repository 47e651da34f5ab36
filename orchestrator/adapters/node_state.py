"""Read nodes' managed state over SSH, and keep the fingerprints of their last full deploy.

The records are a small JSON file in the data directory (0600): fingerprints and a date per
node, nothing about users. A controller without the file (or with a damaged one) only loses
the fast path: every node gets the full Ansible run and the file is written again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from orchestrator.adapters import ssh
from orchestrator.adapters.private_files import write_private
from orchestrator.core.converge import NodeRecord
from orchestrator.errors import NodeError

PROBE_SCRIPT = Path(__file__).with_name("node_state_probe.py")
PROBE_TIMEOUT = 60.0


def read_state(target: ssh.Target) -> str:
    """The probe's output on one node (root, read-only, standard-library python3)."""
    script = PROBE_SCRIPT.read_text(encoding="utf-8")
    return ssh.run_on(target, ["python3", "-"], stdin=script, timeout=PROBE_TIMEOUT).stdout


def read_states(targets: Iterable[ssh.Target], workers: int = 16) -> dict[str, str | NodeError]:
    """Each node's probe output, or the error that kept it from answering."""

    def one(target: ssh.Target) -> tuple[str, str | NodeError]:
        try:
            return target.name, read_state(target)
        except NodeError as exc:
            return target.name, exc

    targets = list(targets)
    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(targets))) as pool:
        return dict(pool.map(one, targets))


def load_records(path: Path) -> dict[str, NodeRecord]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(name): NodeRecord.from_dict(entry) for name, entry in data["nodes"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # an unreadable record only costs the fast path


def save_records(path: Path, records: Mapping[str, NodeRecord]) -> None:
    """Replace the file atomically: a deploy never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = json.dumps(
        {"version": 1, "nodes": {n: r.as_dict() for n, r in sorted(records.items())}},
        indent=1,
        sort_keys=True,
    )
    write_private(path, (text + "\n").encode("utf-8"))
