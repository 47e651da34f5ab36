"""Parse what a node's counters entry point prints: strictly, all or nothing.

Expected: ``epoch TOKEN`` then one ``PUBLIC_KEY<TAB>RX<TAB>TX`` line per peer (the output of
`wg show IFACE transfer`); while a node key rotation overlaps, a line ``interface IFACEn`` and
the same again for the overlap interface. Anything else, an endpoint or a handshake time
included, rejects the node's whole answer, so nothing from it is ever applied or stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import repeat
from typing import cast

from orchestrator.core.accounting import Sample
from orchestrator.core.peers import valid_key

EPOCH_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
IFACE_RE = re.compile(r"^[A-Za-z0-9_=+.-]{1,15}$")
MAX_COUNTER = 2**63 - 1


class CounterParseError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class CounterReport:
    epoch: str
    samples: tuple[Sample, ...]
    overlap: CounterReport | None = None  # the interface serving the node's next key
    overlap_interface: str = ""


def _counter(text: str, line: int, what: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise CounterParseError(line, f"{what} {text[:24]!r} is not a byte count")
    value = int(text)
    if value > MAX_COUNTER:
        raise CounterParseError(line, f"{what} {text[:24]!r} is out of range")
    return value


# One peer line, whole: a key, then two byte counts without leading zeros and below 10^18 (so
# within MAX_COUNTER). Matched over a section at once in C; an answer that fails it (a 19-digit
# count included) is walked line by line, which accepts or names the fault exactly.
_PEER_LINES_RE = re.compile(
    r"^([A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)\t(0|[1-9][0-9]{0,17})\t(0|[1-9][0-9]{0,17})$",
    re.MULTILINE,
)


def _fast_samples(body: list[str]) -> list[Sample] | None:
    """The section's samples if every line is well formed and no peer repeats, else None."""
    found = _PEER_LINES_RE.findall("\n".join(body))
    if len(found) != len(body):
        return None
    if not found:
        return []
    keys, rxs, txs = zip(*found, strict=True)
    if len(set(keys)) != len(keys):
        return None
    # tuple.__new__ builds each Sample in C (a NamedTuple's own __new__ is Python): this loop
    # runs 100,000 times a sync.
    rows = zip(keys, map(int, rxs), map(int, txs), strict=True)
    return cast(list[Sample], list(map(tuple.__new__, repeat(Sample), rows)))


def _section(lines: list[str], first: int) -> tuple[str, list[Sample], int]:
    """One ``epoch`` line and its peer lines from ``lines[first]``; return the next index."""
    head = lines[first].split(" ")
    if len(head) != 2 or head[0] != "epoch" or not EPOCH_RE.match(head[1]):
        raise CounterParseError(first + 1, f"expected 'epoch TOKEN', got {lines[first][:60]!r}")
    end = first + 1
    while end < len(lines) and not lines[end].startswith("interface "):
        end += 1
    fast = _fast_samples(lines[first + 1 : end])
    if fast is not None:
        return head[1], fast, end
    samples = []
    seen: set[str] = set()
    for index in range(first + 1, end):
        number = index + 1
        fields = lines[index].split("\t")
        if len(fields) != 3:
            raise CounterParseError(number, f"expected 3 tab-separated fields, got {len(fields)}")
        key, rx, tx = fields
        if not valid_key(key):
            raise CounterParseError(number, f"{key[:60]!r} is not a WireGuard public key")
        if key in seen:
            raise CounterParseError(number, "the same peer twice")
        seen.add(key)
        samples.append(Sample(key, _counter(rx, number, "rx"), _counter(tx, number, "tx")))
    return head[1], samples, end


def parse_counters(text: str) -> CounterReport:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise CounterParseError(1, "empty answer")
    epoch, samples, index = _section(lines, 0)
    if index == len(lines):
        return CounterReport(epoch, tuple(samples))
    name = lines[index].split(" ")
    if len(name) != 2 or not IFACE_RE.match(name[1]) or index + 1 == len(lines):
        raise CounterParseError(index + 1, f"bad overlap section {lines[index][:60]!r}")
    overlap_epoch, overlap_samples, end = _section(lines, index + 1)
    if end != len(lines):
        raise CounterParseError(end + 1, "more than one overlap section")
    return CounterReport(
        epoch,
        tuple(samples),
        overlap=CounterReport(overlap_epoch, tuple(overlap_samples)),
        overlap_interface=name[1],
    )
