"""Parse what a node's counters entry point prints: strictly, all or nothing.

Expected: ``epoch TOKEN`` then one ``PUBLIC_KEY<TAB>RX<TAB>TX`` line per peer (the output of
`wg show IFACE transfer`); while a node key rotation overlaps, a line ``interface IFACEn`` and
the same again for the overlap interface. Anything else, an endpoint or a handshake time
included, rejects the node's whole answer, so nothing from it is ever applied or stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.core.accounting import Sample, SampleColumns
from orchestrator.core.errors import NodeAnswerInvalid
from orchestrator.core.peers import valid_key

EPOCH_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
IFACE_RE = re.compile(r"^[A-Za-z0-9_=+.-]{1,15}$")
MAX_COUNTER = 2**63 - 1


class CounterParseError(NodeAnswerInvalid):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class CounterReport:
    epoch: str
    samples: Sequence[Sample]  # a tuple, or the parser's columns
    overlap: CounterReport | None = None  # the interface serving the node's next key
    overlap_interface: str = ""


# ASCII digits only: ``str.isdigit`` and ``int`` also take Arabic-Indic, fullwidth and other
# Unicode digits, which no `wg` prints.
_COUNT_RE = re.compile(r"0|[1-9][0-9]*")
_MAX_DIGITS = len(str(MAX_COUNTER))


def _counter(text: str, line: int, what: str) -> int:
    if _COUNT_RE.fullmatch(text) is None:
        raise CounterParseError(line, f"{what} {text[:24]!r} is not a byte count")
    # Checked by length first: int() of a many-thousand-digit text is slow, or refused.
    if len(text) > _MAX_DIGITS or int(text) > MAX_COUNTER:
        raise CounterParseError(line, f"{what} {text[:24]!r} is out of range")
    return int(text)


# A section's peer lines, whole: each a key, then two byte counts without leading zeros and below
# 10^18 (so within MAX_COUNTER), each ending in a newline. Checked over the section at once in C
# and then split without looking again; an answer that fails it (a 19-digit count included) is
# walked line by line, which accepts or names the fault exactly.
_PEER_BLOCK_RE = re.compile(
    r"(?:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\t(?:0|[1-9][0-9]{0,17})\t(?:0|[1-9][0-9]{0,17})\n)*"
)
_EPOCH_LINE_RE = re.compile(r"epoch ([A-Za-z0-9-]{1,64})")


def _fast_section(section: str) -> tuple[str, SampleColumns] | None:
    """``epoch TOKEN`` and its peer lines, every line ending in a newline; None if anything is
    off (the line walk then names it)."""
    head, newline, body = section.partition("\n")
    epoch = _EPOCH_LINE_RE.fullmatch(head)
    if not newline or epoch is None or _PEER_BLOCK_RE.fullmatch(body) is None:
        return None
    fields = body.replace("\n", "\t").split("\t")
    fields.pop()  # after the last newline
    keys = fields[0::3]
    if len(set(keys)) != len(keys):
        return None
    return epoch[1], SampleColumns(keys, list(map(int, fields[1::3])), list(map(int, fields[2::3])))


def _fast_report(text: str) -> CounterReport | None:
    """The whole answer at C speed when it is well formed, else None."""
    main, marker, rest = text.partition("\ninterface ")
    first = _fast_section(main + "\n" if marker else main)
    if first is None:
        return None
    if not marker:
        return CounterReport(first[0], first[1])
    name, newline, overlap = rest.partition("\n")
    second = _fast_section(overlap) if newline and IFACE_RE.match(name) else None
    if second is None or "\ninterface " in overlap:
        return None
    return CounterReport(first[0], first[1], overlap=CounterReport(*second), overlap_interface=name)


def _section(lines: list[str], first: int) -> tuple[str, list[Sample], int]:
    """One ``epoch`` line and its peer lines from ``lines[first]``; return the next index."""
    head = lines[first].split(" ")
    if len(head) != 2 or head[0] != "epoch" or not EPOCH_RE.match(head[1]):
        raise CounterParseError(first + 1, f"expected 'epoch TOKEN', got {lines[first][:60]!r}")
    end = first + 1
    while end < len(lines) and not lines[end].startswith("interface "):
        end += 1
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
    fast = _fast_report(text)
    if fast is not None:
        return fast
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
