"""What the audit's rule modules share: a finding, and how a probe's KEY=VALUE output reads."""

from __future__ import annotations

from typing import NamedTuple


class Finding(NamedTuple):
    """One rule's verdict on one node, with the evidence an operator checks it by."""

    check: str
    passed: bool
    evidence: str


def key_values(text: str, separator: str = "=") -> dict[str, str]:
    """``KEY<separator>VALUE`` lines as a mapping, the last assignment winning, as systemd,
    sysctl and unbound read their settings. Blank lines, comments (``#``, ``;``) and
    ``[section]`` headers are skipped; runs of whitespace in a value read as one space."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(separator)
        key = key.strip()
        # Split before stripping: an empty value (`logfile<tab>`) is a setting too.
        if sep and key and not key.startswith(("#", ";", "[")):
            values[key] = " ".join(value.split())
    return values
