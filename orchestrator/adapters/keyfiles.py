"""The controller's own SSH key pairs, created with `cryptography` and kept 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.adapters.private_files import (
    check_target,
    private_dir,
    read_private,
    write_private,
)

__all__ = ["ensure_ssh_keypair", "new_host_key", "write_private"]


def ensure_ssh_keypair(path: Path, comment: str) -> str:
    """Create an ed25519 key at ``path`` and ``path.pub`` unless present; return the public line.

    A missing key directory is made 0700; an existing one others may write into is refused
    (see private_files). A key or public-key file that is a symbolic link or another user's
    file is refused, never followed or replaced.
    """
    public_path = path.with_name(path.name + ".pub")
    private_dir(path.parent, tighten=False)
    if os.path.lexists(path):
        private = serialization.load_ssh_private_key(read_private(path), password=None)
        check_target(public_path)
        if public_path.exists():
            found = os.lstat(public_path)
            if stat.S_IMODE(found.st_mode) & 0o022:
                os.chmod(public_path, 0o644)  # a key others can rewrite is no key of ours
            return public_path.read_text(encoding="ascii").strip()
        public = private.public_key()
    else:
        check_target(public_path)
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
    write_private(public_path, (line + "\n").encode("ascii"), mode=0o644)
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
