"""Many configurations at once (`wgfleet peers add --from FILE`): the rows of a batch file.

A batch is YAML (a list of mappings, or a mapping whose ``configurations`` key holds one) or
CSV (a header line, then one row a line). Each row is what one `peers add` takes:

- ``account`` (required): the account the configuration belongs to;
- ``name``: the configuration's name (default ACCOUNT-N, the next free N);
- ``nodes`` (required): ``all``, or node names (a YAML list, or comma- or space-separated);
- ``quota`` (a size such as 10GiB, or a number of bytes) or ``plan``, at most one;
- ``split_tunnel``: networks routed through the tunnel instead of everything.

Every row is checked before anything is made; a bad row refuses the batch whole, and its one
line names the row, the field and the value. The file's own bounds are those of a top-up batch
(size, line length, no control characters, YAML read strictly: core.yaml_input).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from orchestrator.core.errors import CoreError, InvalidInput
from orchestrator.core.input_limits import TOPUP_LINE_MAX_CHARS
from orchestrator.core.node_names import node_name_problem
from orchestrator.core.peers import NAME_RE, USERNAME_RE
from orchestrator.core.quoting import quote
from orchestrator.core.units import parse_size
from orchestrator.core.yaml_input import YamlInputError, compose, construct

FIELDS = ("account", "name", "nodes", "quota", "plan", "split_tunnel")
ALL_NODES = "all"
# More rows than any node's tunnel pool holds peers is not one batch (a /24 holds 253).
MAX_ROWS = 10_000
_NOT_TEXT = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\ufeff\\u2028\\u2029]")


@dataclass(frozen=True)
class BatchRow:
    """One configuration to make: ``nodes`` None means every deployed node."""

    row: int  # 1-based, in the file's order
    line: int  # where the row starts in the file
    account: str
    name: str | None
    nodes: tuple[str, ...] | None
    quota_bytes: int | None
    plan: str | None
    split_tunnel: str | None


class BadRow(InvalidInput):
    """A row that cannot be made: ``row``, ``line``, the ``field`` at fault and its ``value``."""

    def __init__(self, row: int, line: int, field: str, value: object, problem: str) -> None:
        self.row = row
        self.line = line
        self.field = field
        self.value = value
        self.problem = problem
        where = f"row {row} (line {line})" if row else f"line {line}"
        named = f"{field}: {quote(value)}: " if field else ""
        super().__init__(f"{where}: {named}{problem}")


def parse_peer_batch(text: str) -> list[BatchRow]:
    """Every row of a batch file, checked; the first bad one raises BadRow."""
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        if len(line) > TOPUP_LINE_MAX_CHARS:
            raise BadRow(0, number, "", "", f"longer than {TOPUP_LINE_MAX_CHARS} characters")
        found = _NOT_TEXT.search(line.removesuffix("\r"))
        if found is not None:
            raise BadRow(0, number, "", "", f"control character U+{ord(found.group()):04X}")
    text = text.removeprefix("\ufeff")
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    if not first:
        raise BadRow(0, 1, "", "", "no configurations in the file")
    header = first.split(",")[0].strip(" \t\"'")
    records = _csv_records(text) if header in FIELDS and "," in first else _yaml_records(text)
    if not records:
        raise BadRow(0, 1, "", "", "no configurations in the file")
    if len(records) > MAX_ROWS:
        raise BadRow(0, 1, "", "", f"more than {MAX_ROWS} configurations in one batch")
    rows = [_checked(number, line, record) for number, (line, record) in enumerate(records, 1)]
    named: dict[str, int] = {}
    for row in rows:
        if row.name is None:
            continue
        if row.name in named:
            raise BadRow(row.row, row.line, "name", row.name, f"repeats row {named[row.name]}")
        named[row.name] = row.row
    return rows


Record = dict[str, object]


def _yaml_records(text: str) -> list[tuple[int, Record]]:
    try:
        root = compose(text)
    except YamlInputError as exc:
        raise BadRow(0, exc.line, "", "", f"not YAML or CSV: {exc.problem}") from None
    items = root
    if isinstance(root, yaml.MappingNode):
        keys = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
        if set(keys) != {"configurations"}:
            raise BadRow(0, 1, "", "", "a YAML batch is a list of rows, or `configurations:` one")
        items = keys["configurations"]
    if not isinstance(items, yaml.SequenceNode):
        raise BadRow(0, 1, "", "", "a YAML batch is a list of rows, or `configurations:` one")
    records: list[tuple[int, Record]] = []
    for number, item in enumerate(items.value, start=1):
        line = int(item.start_mark.line) + 1
        if not isinstance(item, yaml.MappingNode):
            raise BadRow(number, line, "", "", "a row is a mapping (account: ..., nodes: ...)")
        try:
            value = construct(item)
        except YamlInputError as exc:
            raise BadRow(number, exc.line, "", "", exc.problem) from None
        records.append((line, {str(k): v for k, v in value.items()}))
    return records


def _csv_records(text: str) -> list[tuple[int, Record]]:
    numbered = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip(" \t\r")]
    header_line, header_text = numbered[0]
    try:
        header = [h.strip(" \t") for h in next(csv.reader(io.StringIO(header_text)))]
    except csv.Error as exc:
        raise BadRow(0, header_line, "header", header_text, f"not CSV: {exc}") from None
    unknown = [h for h in header if h not in FIELDS]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if unknown or repeated or "account" not in header or "nodes" not in header:
        raise BadRow(
            0,
            header_line,
            "header",
            ",".join(header),
            f"a CSV header names account, nodes and any of {', '.join(FIELDS[1:])}, each once",
        )
    records: list[tuple[int, Record]] = []
    for number, (line, row_text) in enumerate(numbered[1:], start=1):
        try:
            rows = list(csv.reader(io.StringIO(row_text)))
        except csv.Error as exc:
            raise BadRow(number, line, "", "", f"not CSV: {exc}") from None
        values = [v.strip(" \t\r") for v in rows[0]] if len(rows) == 1 else []
        if len(values) != len(header):
            raise BadRow(
                number, line, "", "", f"{len(values)} values, the header names {len(header)}"
            )
        records.append((line, {k: v for k, v in zip(header, values, strict=True) if v != ""}))
    return records


def _checked(row: int, line: int, record: Record) -> BatchRow:
    def bad(field: str, problem: str) -> BadRow:
        return BadRow(row, line, field, record.get(field), problem)

    unknown = sorted(k for k in record if k not in FIELDS)
    if unknown:
        raise BadRow(row, line, unknown[0], "", f"unknown field (known: {', '.join(FIELDS)})")
    account = record.get("account")
    if not isinstance(account, str) or not USERNAME_RE.fullmatch(account):
        raise bad("account", "an account name: lowercase letters, digits, '.', '_' or '-'")
    name = record.get("name")
    if name is not None and (not isinstance(name, str) or not NAME_RE.fullmatch(name)):
        raise bad("name", "lowercase letters, digits, '.', '_' or '-'")
    nodes = _nodes(record.get("nodes"), bad)
    if "quota" in record and "plan" in record:
        raise bad("plan", "give quota or plan, not both")
    quota = None
    if "quota" in record:
        try:
            quota = parse_size(record["quota"])
        except CoreError as exc:
            raise bad("quota", str(exc)) from None
    plan = record.get("plan")
    if plan is not None and (not isinstance(plan, str) or not NAME_RE.fullmatch(plan)):
        raise bad("plan", "a plan name: lowercase letters, digits, '.', '_' or '-'")
    split = record.get("split_tunnel")
    if split is not None and not isinstance(split, str):
        raise bad("split_tunnel", "networks, comma-separated")
    return BatchRow(row, line, account, name, nodes, quota, plan, split)


def _nodes(value: object, bad: Callable[[str, str], BadRow]) -> tuple[str, ...] | None:
    if value is None:
        raise bad("nodes", "missing: `all` or node names")
    if value == ALL_NODES:
        return None
    if isinstance(value, str):
        names = [n for n in re.split(r"[,\s]+", value) if n]
    elif isinstance(value, list) and all(isinstance(n, str) for n in value):
        names = list(value)
    else:
        raise bad("nodes", "`all` or node names")
    if not names:
        raise bad("nodes", "`all` or node names")
    for name in names:
        problem = node_name_problem(name)
        if problem is not None:
            raise bad("nodes", f"node name {quote(name)}: {problem}")
    return tuple(sorted(set(names)))
