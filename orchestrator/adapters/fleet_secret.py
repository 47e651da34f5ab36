"""The fleet secret on this controller: one file, or a systemd credential, read and made safely.

The secret is 32 random bytes written as one base64 line, so an operator can copy it to
another controller or seal it with ``systemd-creds encrypt``. A service started with
``LoadCredential=wgfleet-fleet-secret:...`` (or ``LoadCredentialEncrypted=``) finds it in
``$CREDENTIALS_DIRECTORY``, which then wins over the settings' ``fleet_secret`` file.
Every problem is one line naming the file, the field and what to do (ConfigError, exit 2);
no message ever holds a byte of the secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.private_files import read_private, write_private
from orchestrator.adapters.sealing import MIN_SECRET_BYTES
from orchestrator.errors import ConfigError, UsageError

CREDENTIAL_NAME = "wgfleet-fleet-secret"
FIELD = "fleet_secret"
# Where a rotation writes the next secret until the store is resealed under it.
PENDING_SUFFIX = ".next"


@dataclass(frozen=True)
class SecretFile:
    """Where this controller's fleet secret is; ``credential``: handed in by systemd (read-only)."""

    path: Path
    credential: bool = False

    @property
    def pending(self) -> Path:
        return self.path.with_name(self.path.name + PENDING_SUFFIX)


def locate(configured: Path) -> SecretFile:
    """The systemd credential when the service has one, else the settings' file."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        candidate = Path(directory) / CREDENTIAL_NAME
        if os.path.lexists(candidate):
            return SecretFile(candidate, credential=True)
    return SecretFile(configured)


def new_secret() -> bytes:
    return secrets.token_bytes(MIN_SECRET_BYTES)


def encode(secret: bytes) -> bytes:
    return base64.b64encode(secret) + b"\n"


def read_secret(where: SecretFile, source: str) -> bytes:
    """The secret's bytes; ConfigError naming the file when it is missing, unreadable,
    not one base64 line, or shorter than 32 bytes."""

    def refused(problem: str) -> ConfigError:
        return ConfigError(source, FIELD, str(where.path), problem)

    try:
        text = read_private(where.path) if not where.credential else _read_credential(where.path)
    except FileNotFoundError:
        raise refused(
            "missing: copy the fleet secret from another controller (docs/SECURITY.md)"
        ) from None
    except UsageError as exc:
        raise refused(str(exc).removeprefix(f"{where.path}: ")) from None
    except OSError as exc:
        raise refused(f"cannot be read: {exc.strerror or exc}") from None
    try:
        secret = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise refused(
            "is not one base64 line (make one: head -c 32 /dev/urandom | base64)"
        ) from None
    if len(secret) < MIN_SECRET_BYTES:
        raise refused(
            f"holds {len(secret)} bytes, a fleet secret needs at least {MIN_SECRET_BYTES}"
        )
    return secret


def _read_credential(path: Path) -> bytes:
    """A credential systemd made for this service (0400, maybe root's on a read-only mount):
    read without following a link, left as it is."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def create_secret(path: Path, source: str) -> bytes:
    """A new secret written to ``path`` 0600 (never through a link); refused if one exists."""
    secret = new_secret()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigError(source, FIELD, str(path), "exists already; nothing was written") from None
    except OSError as exc:
        raise ConfigError(source, FIELD, str(path), f"cannot be created: {exc.strerror}") from None
    try:
        os.write(fd, encode(secret))
        os.fsync(fd)
    finally:
        os.close(fd)
    return secret


def write_pending(where: SecretFile, secret: bytes) -> None:
    """The next secret beside the current one, until the store is resealed under it."""
    write_private(where.pending, encode(secret))


def install_pending(where: SecretFile) -> None:
    """The next secret replaces the current one (the store is sealed under it now)."""
    os.rename(where.pending, where.path)


def install(where: SecretFile, secret: bytes) -> None:
    write_private(where.path, encode(secret))
