"""Byte amounts, written and read the same way everywhere: fleet files, command arguments
(`peers add --quota 10GiB`, `plans set`, `topup --bytes`), tables and the TUI."""

from __future__ import annotations

import re

from orchestrator.core.errors import InvalidInput
from orchestrator.core.input_limits import MAX_BYTES

# ASCII digits only: \d would take Arabic-Indic or fullwidth digits, which int() reads too.
SIZE_RE = re.compile(r"^([0-9]{1,15}) *(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$")
SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
}
SIZE_PATTERN = r"^[0-9]{1,15} *(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$"


def parse_size(value: object) -> int:
    """Bytes, from a number or a text such as ``10GiB``; at most MAX_BYTES (a signed 64-bit
    integer, what the store keeps)."""
    if isinstance(value, bool):
        raise InvalidInput("a size such as 10GiB or a number of bytes")
    if isinstance(value, int):
        size = value
        if size < 0:
            raise InvalidInput("must not be negative")
    else:
        match = SIZE_RE.fullmatch(str(value).strip(" "))
        if not match:
            raise InvalidInput("a size such as 10GiB, 500MB or a number of bytes")
        size = int(match.group(1)) * SIZE_UNITS[match.group(2)]
    if size > MAX_BYTES:
        raise InvalidInput(f"at most {MAX_BYTES} bytes (8 EiB)")
    return size


def format_size(size: int) -> int | str:
    """The shortest exact way to write ``size`` in a fleet file (parse_size reads it back)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size and size % SIZE_UNITS[unit] == 0:
            return f"{size // SIZE_UNITS[unit]}{unit}"
    return size


def human_bytes(n: int | None) -> str:
    """Bytes for people, as the CLI prints them: exact below 1 KiB, two decimals above."""
    if n is None:
        return "-"
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"
