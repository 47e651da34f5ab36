"""The controller files every controller of a PostgreSQL fleet shares, kept in the store.

The pinned host keys (``ssh.known_hosts``), the converged-deploy fingerprints
(``deploy-state.json``) and the fleet file's node settings (``fleet-nodes.yml``) are files in
the data directory, read by paramiko, Ansible's OpenSSH and the deploy. On PostgreSQL the
store holds the fleet's copy (table ``shared_files``): every session first brings the local
files up to it (``pull``), and every writing session, which holds the fleet lock, puts back
what it changed (``push``), so the controllers take turns on one version. A fleet moving to
PostgreSQL seeds the store from the first controller's files. On SQLite, the embedded
single-controller store, the files are the only copy and nothing here runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.private_files import write_private
from orchestrator.adapters.store import SqlStore
from orchestrator.settings import Settings


def _files(settings: Settings) -> dict[str, tuple[Path, int]]:
    """name -> (local path, mode): public keys 0644 (OpenSSH and operators read them)."""
    return {
        "known_hosts": (settings.ssh.known_hosts, 0o644),
        "deploy-state.json": (settings.data_dir / "deploy-state.json", 0o600),
        "fleet-nodes.yml": (settings.data_dir / "fleet-nodes.yml", 0o600),
    }


@dataclass(frozen=True)
class _Compared:
    name: str
    path: Path
    mode: int
    local: str | None
    stored: str | None


def _local(path: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text(encoding="utf-8")
    return None


def _compared(settings: Settings, store: SqlStore) -> Iterator[_Compared]:
    """Each shared file's local and stored text (None: absent); nothing on SQLite."""
    if store.db.dialect != "postgresql":  # the store's own engine, as open_store chose it
        return
    stored = store.shared_files()
    for name, (path, mode) in _files(settings).items():
        yield _Compared(name, path, mode, _local(path), stored.get(name))


def pull(settings: Settings, store: SqlStore) -> None:
    """Bring the local files to the store's version (a file the store lacks seeds it)."""
    for file in _compared(settings, store):
        if file.stored is not None and file.stored != file.local:
            write_private(file.path, file.stored.encode("utf-8"), mode=file.mode, make_parent=True)
        elif file.stored is None and file.local is not None:
            store.save_shared_file(file.name, file.local)


def push(settings: Settings, store: SqlStore) -> None:
    """Put back the local files a writing session changed."""
    for file in _compared(settings, store):
        if file.local is not None and file.stored != file.local:
            store.save_shared_file(file.name, file.local)
