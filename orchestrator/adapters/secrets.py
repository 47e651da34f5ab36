"""The fleet's secret store: preshared keys the nodes need again, sealed in the quota store.

A configuration names its preshared key by reference (``psk:<name>``); the key itself is a
row of ``sealed_secrets``, sealed under the fleet key (``adapters/sealing.py``) and bound to
that reference. Any controller holding the fleet secret and the store's URL opens it; a copy
of the store alone opens nothing. Writes join the caller's store transaction, so a
configuration and its key land together or not at all.

Before the store held them (schema 17), preshared keys were 0600 files in the controller's
``secrets/`` directory: :func:`local_secrets` reads those once so they can be sealed into
the store, after which the directory is removed and nothing reads it again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from pathlib import Path

from orchestrator.adapters.private_files import read_private
from orchestrator.adapters.sealing import FleetKey, Keyring, UnsealError
from orchestrator.adapters.store.sealed import SealedSecretsStore
from orchestrator.errors import StoreError

REF_RE = re.compile(r"^psk:([a-z0-9][a-z0-9._-]{0,80})$")


def check_ref(ref: str) -> str:
    if not REF_RE.match(ref):
        raise StoreError(f"not a secret reference: {ref!r}")
    return ref


class SecretStore:
    """Sealed secrets by reference; the keyring is loaded on first use (a session that never
    touches a preshared key needs no fleet secret)."""

    def __init__(self, store: SealedSecretsStore, keyring: Callable[[], Keyring]) -> None:
        self.store = store
        self._load = keyring
        self._keyring: Keyring | None = None

    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = self._load()
        return self._keyring

    def use(self, keyring: Keyring) -> None:
        """Seal and open with ``keyring`` from now on (after a rotation)."""
        self._keyring = keyring

    def put_psk(self, name: str, value: str) -> str:
        ref = check_ref(f"psk:{name}")
        with self.store.transaction():
            # Sealed under the fleet's key as the store names it now: a session that began
            # before another controller's rotation reads the new secret first.
            if self.store.fleet_key_id(hold="share") != self.keyring().current.key_id:
                self._keyring = self._load()
            key = self.keyring().current
            self.store.put_sealed(ref, key.key_id, key.seal(ref, value))
        return ref

    def _key(self, key_id: str, ref: str) -> FleetKey:
        try:
            return self.keyring().key(key_id, ref)
        except UnsealError:
            if key_id != self.store.fleet_key_id():
                raise
            self._keyring = self._load()  # rotated since this session loaded its key
            return self.keyring().key(key_id, ref)

    def get(self, ref: str) -> str:
        found = self.store.sealed(check_ref(ref))
        if found is None:
            raise StoreError(f"secret {ref} is missing from the store")
        key_id, sealed = found
        return self._key(key_id, ref).unseal(ref, sealed)

    def get_many(self, refs: Collection[str]) -> dict[str, str | StoreError]:
        """Each reference's secret, or why it cannot be had (missing, does not open), read
        in one query: a push opens the keys of every node it reaches before its threads
        start (the store's connection belongs to the thread that opened it)."""
        rows = self.store.sealed_many(refs)
        opened: dict[str, str | StoreError] = {}
        for ref in refs:
            try:
                if ref not in rows:
                    raise StoreError(f"secret {ref} is missing from the store")
                key_id, sealed = rows[ref]
                opened[ref] = self._key(key_id, ref).unseal(ref, sealed)
            except StoreError as exc:
                opened[ref] = exc
        return opened

    def delete(self, ref: str) -> None:
        self.store.delete_sealed([check_ref(ref)])


def local_secrets(directory: Path) -> dict[str, str]:
    """The preshared keys a controller kept as files before the store sealed them, by
    reference (files whose names are no reference are left out)."""
    found = {}
    for path in sorted(directory.iterdir()):
        ref = f"psk:{path.name}"
        if REF_RE.match(ref) and path.is_file() and not path.is_symlink():
            found[ref] = read_private(path).decode("ascii").strip()
    return found
