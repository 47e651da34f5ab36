"""Bytes from outside made text, or refused naming the line: UTF-8 only, no control bytes.

Used by every file format the controller reads (settings, fleet files, inventories, billing
batches). A leading UTF-8 byte order mark (spreadsheets write one) is dropped; anywhere else
U+FEFF is refused like any other invisible character.
"""

from __future__ import annotations

import re

from orchestrator.core.errors import InvalidInput

BOM = "\ufeff"
# Tab, newline and carriage return are text; every other C0 control, DEL, the C1 controls and
# a byte order mark past the start are not, in any format read here.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")


class TextInputError(InvalidInput):
    """Not text: ``line`` is where (1-based), ``value`` the bytes or character refused."""

    def __init__(self, line: int, value: bytes | str, problem: str) -> None:
        self.line = line
        self.value = value
        self.problem = problem
        super().__init__(f"line {line}: {problem}")


def decode_text(data: bytes) -> str:
    """``data`` as text; raises TextInputError naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise TextInputError(
            line, data[exc.start : exc.end], f"not UTF-8 text (at byte offset {exc.start})"
        ) from None
    text = text.removeprefix(BOM)
    found = _NOT_TEXT.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        char = found.group()
        raise TextInputError(
            line, char, f"U+{ord(char):04X}: control characters are not allowed in the text"
        )
    return text
