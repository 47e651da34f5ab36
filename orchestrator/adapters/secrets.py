"""The controller's secret store: preshared keys the nodes need again after a rebuild.

One 0600 file per secret in a 0700 directory under the data directory; the quota store only
holds a reference (``psk:<name>``), so a copy of the database reveals no key. Files are
written and read without following links (see private_files).
"""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.adapters.private_files import private_dir, read_private, write_private
from orchestrator.errors import StoreError

REF_RE = re.compile(r"^psk:([a-z0-9][a-z0-9._-]{0,80})$")


class SecretStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, ref: str) -> Path:
        match = REF_RE.match(ref)
        if not match:
            raise StoreError(f"not a secret reference: {ref!r}")
        return self.directory / match.group(1)

    def put_psk(self, name: str, value: str) -> str:
        ref = f"psk:{name}"
        path = self._path(ref)
        private_dir(self.directory)
        write_private(path, value.encode("ascii") + b"\n")
        return ref

    def get(self, ref: str) -> str:
        try:
            return read_private(self._path(ref)).decode("ascii").strip()
        except FileNotFoundError:
            raise StoreError(f"secret {ref} is missing from {self.directory}") from None

    def delete(self, ref: str) -> None:
        self._path(ref).unlink(missing_ok=True)
