"""Files a command reads from its operator and writes for them (client configs, exports, saved
plans, top-up batches): the UIs reach the disk through here, never through an adapter.

Written files are 0600 (directories 0700), replaced through a fresh temporary file and never
through a symbolic link; read files are bounded and decoded strictly (adapters.private_files,
adapters.input_files say how).
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.adapters import input_files, private_files
from orchestrator.core.quoting import quote
from orchestrator.errors import UsageError


def check_private_target(path: Path) -> None:
    """Refuse, before anything changes, a target a private file must not replace."""
    private_files.check_target(path)


def write_private_text(path: Path, text: str, *, make_parent: bool = False) -> None:
    """Replace ``path`` with ``text`` (0600, never through a link)."""
    private_files.write_private(path, text.encode("utf-8"), make_parent=make_parent)


def private_output_dir(path: Path) -> Path:
    """A directory for private files: made 0700 when missing, refused if others may write in."""
    return private_files.private_dir(path, tighten=False)


def empty_private_output_dir(path: Path) -> Path:
    """A new or empty directory for many private files (0700 when made here, never a link):
    being empty, none of the files written into it replaces anything."""
    private_files.private_dir(path, tighten=False)
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    if entries:
        raise UsageError(
            f"{path}: not empty ({len(entries)} entries, e.g. {quote(entries[0])}); "
            "give a new or empty directory"
        )
    return path


def read_input_text(path: str | os.PathLike[str], limit: int, what: str) -> str:
    """An input file as text, at most ``limit`` bytes; a ConfigError names what is wrong."""
    return input_files.read_text(path, limit, what)
