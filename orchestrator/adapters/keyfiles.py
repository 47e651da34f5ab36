"""The controller's own SSH key pairs, created with `cryptography` and kept 0600."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def write_private(path: Path, data: bytes) -> None:
    """Write secret bytes so that no moment exists where another user could read them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def ensure_ssh_keypair(path: Path, comment: str) -> str:
    """Create an ed25519 key at ``path`` and ``path.pub`` unless present; return the public line."""
    public_path = path.with_name(path.name + ".pub")
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        if public_path.exists():
            return public_path.read_text(encoding="ascii").strip()
        private = serialization.load_ssh_private_key(path.read_bytes(), password=None)
        public = private.public_key()
    else:
        key = Ed25519PrivateKey.generate()
        write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            ),
        )
        public = key.public_key()
    line = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")
    line = f"{line} {comment}"
    public_path.write_text(line + "\n", encoding="ascii")
    return line


def new_host_key() -> tuple[bytes, str]:
    """A fresh ed25519 SSH host key: (private key file bytes, public key line)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )
    return private, public
