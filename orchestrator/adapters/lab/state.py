"""The lab's own record of what it made: written before each step, so a crash leaves a trail."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "lab.json"


@dataclass
class NodeRecord:
    pid: int | None = None
    host_key: str | None = None


@dataclass
class LabState:
    lab: str
    subnet: str
    nodes: int
    clients: int
    rootfs: str = ""
    inotify_instances_before: int | None = None
    machines: dict[str, NodeRecord] = field(default_factory=dict)
    # The lab internet's services (echo, nsd) by name: the PIDs `lab down` stops.
    internet: dict[str, int] = field(default_factory=dict)

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, state_dir / STATE_FILE)

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        try:
            raw = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        machines = {name: NodeRecord(**record) for name, record in raw.pop("machines", {}).items()}
        try:
            return cls(**raw, machines=machines)
        except TypeError:
            return None


@contextmanager
def lab_lock(state_dir: Path) -> Iterator[None]:
    """Serialise `lab up`/`lab down`/node start-stop for one lab."""
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(state_dir.parent / f".{state_dir.name}.lock", "w", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
