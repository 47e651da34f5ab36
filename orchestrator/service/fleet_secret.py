"""Rotating the fleet secret (`wgfleet keys rotate fleet-secret`): every sealed secret
resealed under a new one in one transaction. Which secret a controller holds is checked in
``fleet_keyring.py``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from orchestrator.adapters import fleet_secret as secret_files
from orchestrator.adapters.sealing import FleetKey, Keyring
from orchestrator.errors import UsageError
from orchestrator.service.context import Fleet, writes


@dataclass(frozen=True)
class RotatedFleetSecret:
    resealed: int
    key_id: str
    previous_key_id: str
    secret_file: str
    # False when the secret is a systemd credential or another controller's copy: the
    # operator installs the new secret where the old one was handed in.
    installed: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@writes
def rotate_fleet_secret(fleet: Fleet, new_secret_file: Path | None = None) -> RotatedFleetSecret:
    """Reseal every stored secret under a new fleet secret in one transaction (the old key
    opens them until it commits), then put the new secret where this controller reads it.

    ``new_secret_file``: the new secret, made by the operator (needed when the current one is
    a systemd credential); None: a new one is made, kept beside the current file until the
    store is resealed (a run stopped in between is finished by the next session)."""
    settings = fleet.settings
    where = secret_files.locate(settings.fleet_secret_file)
    old = fleet.secrets.keyring().current
    if new_secret_file is not None:
        secret = secret_files.read_secret(secret_files.SecretFile(new_secret_file), "--new-secret")
    elif where.credential:
        raise UsageError(
            f"the fleet secret is the systemd credential {where.path}: make the new one "
            "yourself and pass it with --new-secret FILE"
        )
    else:
        secret = secret_files.new_secret()
        secret_files.write_pending(where, secret)
    new = FleetKey.from_secret(secret)
    if new.key_id == old.key_id:
        raise UsageError(f"--new-secret {new_secret_file}: is the current fleet secret")
    rotation = Keyring(new, (old,))
    store = fleet.store
    with store.transaction():
        store.fleet_key_id(hold="update")  # seals under way on other controllers land first
        rows = store.sealed_secrets()
        resealed = [
            (ref, new.seal(ref, rotation.key(key_id, ref).unseal(ref, sealed)))
            for ref, key_id, sealed in rows
        ]
        store.reseal(resealed, new.key_id)
    installed = not where.credential
    if new_secret_file is None:
        secret_files.install_pending(where)
    elif installed:
        secret_files.install(where, secret)
    fleet.secrets.use(Keyring(new))
    fleet.record(f"fleet secret rotated: {len(resealed)} secrets resealed under key {new.key_id}")
    return RotatedFleetSecret(len(resealed), new.key_id, old.key_id, str(where.path), installed)
