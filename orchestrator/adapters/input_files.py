"""Read an input file (or stdin) whole, refusing it by its size before reading it.

The size is checked on the open file (fstat), and the read stops one byte past the bound
anyway, so a file that grows while read, a FIFO or stdin cannot slip a larger input through.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import BinaryIO

from orchestrator.core.input_limits import describe
from orchestrator.core.text_input import TextInputError, decode_text
from orchestrator.errors import ConfigError

STDIN = "-"


def read_bytes(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The file's bytes; ConfigError (exit 2) if it cannot be read or holds more than
    ``limit`` bytes. ``what`` names the kind of file in the message ("a fleet file")."""
    name = str(path)
    if name == STDIN:
        return _read_bounded(sys.stdin.buffer, name, limit, what)
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise ConfigError(name, "(file)", name, "is a directory")
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise _too_large(name, f"{info.st_size} bytes", limit, what)
            return _read_bounded(handle, name, limit, what)
    except OSError as exc:
        raise ConfigError(name, "(file)", name, exc.strerror or str(exc)) from None


def read_text(path: str | os.PathLike[str], limit: int, what: str) -> str:
    """The file as text (UTF-8, a leading byte order mark dropped, no control characters);
    ConfigError naming the line otherwise."""
    data = read_bytes(path, limit, what)
    try:
        return decode_text(data)
    except TextInputError as exc:
        raise ConfigError(str(path), "(file)", exc.value, exc.problem, line=exc.line) from None


def _read_bounded(handle: BinaryIO, name: str, limit: int, what: str) -> bytes:
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise _too_large(name, f"more than {limit} bytes", limit, what)
    return data


def _too_large(name: str, size: str, limit: int, what: str) -> ConfigError:
    return ConfigError(
        name, "(file)", size, f"larger than {describe(limit)}, the bound for {what}; not read"
    )
