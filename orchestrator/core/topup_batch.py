"""Top-ups from billing, in bulk: JSON lines or CSV, each line one purchase.

Fields: configuration, amount, invoice, and exactly one of bytes or plan. Every line is checked
before anything is applied; a bad line is reported with its number and the batch is refused
whole, so a billing export is never half-applied.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

INVOICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
AMOUNT_RE = re.compile(r"^\d{1,12}(\.\d{1,4})?$")
FIELDS = ("configuration", "amount", "invoice", "bytes", "plan")


@dataclass(frozen=True)
class TopUpLine:
    line: int
    configuration: str
    invoice: str
    amount: str
    bytes_granted: int | None
    plan: str | None


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


def _records(text: str) -> list[tuple[int, dict[str, object] | str]]:
    """(line number, record or an error text) for every non-empty line."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        return []
    if first.lstrip().startswith(("{", "[")):
        found: list[tuple[int, dict[str, object] | str]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                found.append((number, f"not JSON: {exc.msg}"))
                continue
            found.append((number, record if isinstance(record, dict) else "not a JSON object"))
        return found
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in FIELDS]
    if unknown or "configuration" not in header:
        return [(1, f"CSV header must name {', '.join(FIELDS)}; got {', '.join(header)}")]
    rows: list[tuple[int, dict[str, object] | str]] = []
    for row in reader:
        if not any((v or "").strip() for v in row.values()):
            continue
        cleaned = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        rows.append((reader.line_num, {k: v for k, v in cleaned.items() if v != ""}))
    return rows


def parse_batch(text: str) -> tuple[list[TopUpLine], list[BadLine]]:
    """Every line checked; duplicate invoices inside the batch are bad lines too."""
    good: list[TopUpLine] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}
    for number, record in _records(text):
        if isinstance(record, str):
            bad.append(BadLine(number, record))
            continue
        problem = _problem(record)
        if problem:
            bad.append(BadLine(number, problem))
            continue
        invoice = str(record["invoice"])
        if invoice in seen:
            bad.append(BadLine(number, f"invoice {invoice!r} repeats line {seen[invoice]}"))
            continue
        seen[invoice] = number
        raw_bytes = record.get("bytes")
        good.append(
            TopUpLine(
                number,
                str(record["configuration"]),
                invoice,
                str(record["amount"]),
                None if raw_bytes is None else int(str(raw_bytes)),
                None if record.get("plan") is None else str(record["plan"]),
            )
        )
    if not good and not bad:
        bad.append(BadLine(1, "no top-ups in the file"))
    return good, bad


def _problem(record: dict[str, object]) -> str | None:
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}"
    for name in ("configuration", "amount", "invoice"):
        if not isinstance(record.get(name), str | int | float) or str(record.get(name)) == "":
            return f"{name}: missing"
    if not INVOICE_RE.match(str(record["invoice"])):
        return f"invoice {record['invoice']!r}: letters, digits and . _ / - only"
    if isinstance(record["amount"], float) or not AMOUNT_RE.match(str(record["amount"])):
        return f'amount {record["amount"]!r}: a decimal string such as "4.99"'
    if ("bytes" in record) == ("plan" in record):
        return "give exactly one of bytes or plan"
    if "bytes" in record:
        value = record["bytes"]
        if isinstance(value, bool) or not str(value).isdigit():
            return f"bytes {value!r}: a whole number of bytes"
    return None
