"""The fleet's pinned SSH host keys: the one place that reads and changes them.

Every connection wgfleet makes trusts exactly these pins: its own SSH (paramiko, through
``lookup``) and Ansible's OpenSSH (through ``openssh_file``). Today they live in the known_hosts
file named by ``ssh.known_hosts``; a store that keeps them elsewhere (the database) replaces
this module's class and nothing else: OpenSSH then gets a file written from it per run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from orchestrator.adapters import keyfiles
from orchestrator.core.inventory import (
    HostKey,
    PinIndex,
    PinnedKey,
    index_pins,
    render_known_hosts,
    replace_pins,
)


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


@lru_cache(maxsize=8)
def _index(path: str, _stamp: tuple[int, int]) -> PinIndex:
    """A known_hosts file indexed once per version (``_stamp``: mtime and size).

    paramiko's own ``HostKeys.load`` checks every line against all the lines before it, which
    cost ~70 ms per connection at 300 pinned nodes and grows with the square of the fleet; a
    fleet-sized file is read here in one linear pass and shared by every connection.
    """
    return index_pins(_read(path))


class KnownHostsPins:
    """Pins kept in an OpenSSH known_hosts file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __str__(self) -> str:
        return str(self.path)

    def _stamp(self) -> tuple[int, int]:
        stat = os.stat(self.path)  # FileNotFoundError: no pins at all, the caller says so
        return stat.st_mtime_ns, stat.st_size

    def lookup(self, name: str) -> list[PinnedKey]:
        """The keys pinned for the host name ``name`` (``known_host_name``); empty: none.

        Raises FileNotFoundError when the pin file itself is missing.
        """
        return _index(str(self.path), self._stamp()).lookup(name)

    def pin(self, names: Sequence[str], key: HostKey) -> list[PinnedKey]:
        """Trust ``key`` for ``names`` and nothing else for them: every older pin of those
        names goes, plain or hashed. Returns the pins replaced. Written atomically, never
        through a link."""
        try:
            text = _read(str(self.path))
        except FileNotFoundError:
            text = ""
        updated, removed = replace_pins(text, names, key)
        # Public keys: OpenSSH and operators read it (0644); its directory is made 0700.
        keyfiles.write_private(self.path, updated.encode("ascii"), mode=0o644, make_parent=True)
        return removed

    def replace_all(self, keys: Iterable[HostKey]) -> None:
        """Trust exactly ``keys`` and nothing else (a fleet whose keys wgfleet made itself:
        the lab)."""
        keyfiles.write_private(
            self.path, render_known_hosts(keys).encode("ascii"), mode=0o644, make_parent=True
        )

    @contextmanager
    def openssh_file(self) -> Iterator[Path]:
        """A known_hosts file holding exactly these pins, for OpenSSH, while the block runs."""
        yield self.path
