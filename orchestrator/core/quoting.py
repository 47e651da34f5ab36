"""Quote outside input for one-line error messages, safely.

An error line echoes what the user (or a node, or a billing export) gave, and that text can
carry anything: a newline that forges a second `wgfleet: error:` line, an ANSI escape that
rewrites the operator's terminal, a bidi override (U+202E) that shows `exe.txt` as `txt.exe`,
or fifty megabytes. Every such value goes through :func:`quote` (a value, in quotes) or
:func:`sanitize` (free text such as a node's stderr line): control, format and separator
characters are written as escapes, and long values are cut with their full length named.
"""

from __future__ import annotations

# What an error line shows of one value; the rest is counted, not printed.
QUOTE_LIMIT = 160
# What one whole error line may hold (the CLI's last guard; messages are far shorter).
LINE_LIMIT = 4000

# Characters that are "printable" to Python yet reorder or hide text on a terminal.
_INVISIBLE = frozenset(
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers (render as blanks)
    "\u180e"  # Mongolian vowel separator
)
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str, quote_char: str | None) -> str:
    if char in _SHORT:
        return _SHORT[char]
    if char == quote_char:
        return "\\" + char
    # isprintable() is False for every control (Cc), format (Cf: the bidi embeddings,
    # overrides and isolates U+202A..U+202E, U+2066..U+2069, marks U+200E/U+200F/U+061C,
    # zero-width characters, U+FEFF, tag characters), separator (Zl, Zp, Zs but space),
    # surrogate, private-use and unassigned character.
    if char.isprintable() and char not in _INVISIBLE:
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _cut(text: str, limit: int) -> tuple[str, str]:
    if len(text) <= limit:
        return text, ""
    return text[:limit], f"... ({len(text)} characters)"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` for an error line: a string in single quotes with every unsafe character
    escaped, anything else as its repr; cut after ``limit`` characters."""
    if isinstance(value, str):
        shown, rest = _cut(value, limit)
        return "'" + "".join(_escape(c, "'") for c in shown) + "'" + rest
    if isinstance(value, bytes | bytearray):
        shown_bytes = bytes(value[:limit])
        rest = f"... ({len(value)} bytes)" if len(value) > limit else ""
        return repr(shown_bytes) + rest
    text = _bounded_repr(value, limit)
    shown, rest = _cut(text, limit)
    return "".join(_escape(c, None) if c != "\\" else c for c in shown) + rest


def sanitize(text: str, limit: int = LINE_LIMIT) -> str:
    """Free text (a message, a node's stderr line) made one safe line: unsafe characters
    escaped (backslashes kept as they are, so escapes already in ``text`` stay readable),
    cut after ``limit`` characters."""
    shown, rest = _cut(text, limit)
    return "".join(_escape(c, None) if c != "\\" else c for c in shown) + rest


def _bounded_repr(value: object, limit: int, depth: int = 0) -> str:
    """repr() that never builds more than it shows: a container shows its first few items
    and its length, a long string its start, a huge number its size."""
    if depth > 3:
        return "..."
    if isinstance(value, list | tuple):
        head = [_bounded_repr(item, limit, depth + 1) for item in value[:8]]
        more = f", ... ({len(value)} items)" if len(value) > 8 else ""
        brackets = "[]" if isinstance(value, list) else "()"
        return brackets[0] + ", ".join(head) + more + brackets[1]
    if isinstance(value, dict):
        pairs = [
            f"{_bounded_repr(k, limit, depth + 1)}: {_bounded_repr(v, limit, depth + 1)}"
            for k, v in list(value.items())[:8]
        ]
        more = f", ... ({len(value)} items)" if len(value) > 8 else ""
        return "{" + ", ".join(pairs) + more + "}"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<a number of {value.bit_length()} bits>"
    return repr(value)
