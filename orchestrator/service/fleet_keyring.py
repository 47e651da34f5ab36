"""This controller's fleet key, checked against the store's, and the move of an older
wgfleet's local preshared-key files into the store (both at the start of a session, before
the unit of work exists; the rotation is in ``fleet_secret.py``).

The store records the id of the fleet's key (``fleet_key``). The first controller that needs
a preshared key makes the secret when none exists anywhere yet (a single controller, the
demo); every other controller must be given a copy, and one holding another secret is
refused before it seals anything under it.
"""

from __future__ import annotations

import os

from orchestrator.adapters import fleet_secret as secret_files
from orchestrator.adapters.sealing import FleetKey, Keyring
from orchestrator.adapters.secrets import local_secrets
from orchestrator.adapters.store import SqlStore
from orchestrator.errors import ConfigError, UsageError
from orchestrator.settings import Settings

# Where an older wgfleet kept each preshared key as a file (in the data directory).
LOCAL_SECRETS = "secrets"


def load_keyring(settings: Settings, store: SqlStore) -> Keyring:
    """This controller's fleet key, checked against the store's (see the module doc)."""
    where = secret_files.locate(settings.fleet_secret_file)
    fleet_key_id = store.fleet_key_id()
    if (
        fleet_key_id is not None
        and not where.credential
        and os.path.lexists(where.pending)
        and FleetKey.from_secret(secret_files.read_secret(_pending(where), settings.source)).key_id
        == fleet_key_id
    ):
        # A rotation resealed the store and stopped before it replaced the file: finish it.
        secret_files.install_pending(where)
    if not os.path.lexists(where.path) and fleet_key_id is None and not where.credential:
        key = FleetKey.from_secret(secret_files.create_secret(where.path, settings.source))
    else:
        key = FleetKey.from_secret(secret_files.read_secret(where, settings.source))
    fleet_key_id = store.claim_fleet_key_id(key.key_id)
    if fleet_key_id != key.key_id:
        raise ConfigError(
            settings.source,
            secret_files.FIELD,
            str(where.path),
            f"is fleet key {key.key_id}, the store's preshared keys are sealed under "
            f"{fleet_key_id}: copy the fleet's current secret to this controller",
        )
    return Keyring(key)


def _pending(where: secret_files.SecretFile) -> secret_files.SecretFile:
    return secret_files.SecretFile(where.pending)


def import_local_secrets(settings: Settings, store: SqlStore, keyring: Keyring) -> int:
    """Seal the preshared keys an older wgfleet kept as files in ``secrets/`` into the store
    (those a configuration still names), in one transaction, then remove the files: nothing
    reads them afterwards. Returns how many were sealed."""
    directory = settings.data_dir / LOCAL_SECRETS
    if directory.is_symlink():  # a planted link must not feed keys in, nor have files removed
        raise UsageError(f"{directory}: is a symbolic link; move the preshared keys in by hand")
    found = local_secrets(directory)
    named = {
        ref
        for config in store.configurations()
        for ref in (config.psk_ref, config.previous_psk_ref)
        if ref
    }
    key = keyring.current
    imported = 0
    with store.transaction():
        for ref, value in found.items():
            if ref in named and store.sealed(ref) is None:
                store.put_sealed(ref, key.key_id, key.seal(ref, value))
                imported += 1
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    return imported
