"""Top-ups from billing, in bulk: JSON lines or CSV, each line one purchase.

Fields: configuration, amount, invoice, and exactly one of bytes or plan. Every line is checked
before anything is applied; a bad line is reported with its number, field and value, and the
batch is refused whole, so a billing export is never half-applied.

The checks are those of a file from outside: at most TOPUP_BATCH_MAX_BYTES in all and
TOPUP_LINE_MAX_CHARS a line (a real line is under 200), no control characters, a leading byte
order mark dropped (spreadsheets write one); a CSV header names each column once and every row
has exactly its columns; digits are ASCII (``int()`` would read Arabic-Indic or fullwidth ones);
bytes fit a signed 64-bit integer (the store's bigint); names follow the store's rules.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from orchestrator.core.input_limits import MAX_BYTES, TOPUP_BATCH_MAX_BYTES, TOPUP_LINE_MAX_CHARS
from orchestrator.core.models import TopUp
from orchestrator.core.peers import NAME_RE
from orchestrator.core.quoting import quote

INVOICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")
AMOUNT_RE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,4})?$")
BYTES_RE = re.compile(r"^[0-9]{1,19}$")
FIELDS = ("configuration", "amount", "invoice", "bytes", "plan")
REQUIRED = ("configuration", "amount", "invoice")
_NOT_TEXT = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\ufeff\\u2028\\u2029]")


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
    field: str = ""  # the field (column) at fault, when one is
    value: object = None

    def __str__(self) -> str:
        if not self.field:
            return f"line {self.line}: {self.problem}"
        return f"line {self.line}: {self.field}: {quote(self.value)}: {self.problem}"


Record = dict[str, object]


def _lines(text: str) -> tuple[list[str], list[BadLine]]:
    """The physical lines, and those no billing export would hold (too long, control
    characters); a bad line is not parsed further."""
    lines = text.removeprefix("\ufeff").split("\n")
    bad = []
    for number, line in enumerate(lines, start=1):
        if len(line) > TOPUP_LINE_MAX_CHARS:
            bad.append(
                BadLine(number, f"longer than {TOPUP_LINE_MAX_CHARS} characters ({len(line)})")
            )
        elif (found := _NOT_TEXT.search(line.removesuffix("\r"))) is not None:
            bad.append(BadLine(number, f"control character U+{ord(found.group()):04X}"))
    return lines, bad


def _json_records(lines: list[str], skip: set[int]) -> list[tuple[int, Record | BadLine]]:
    found: list[tuple[int, Record | BadLine]] = []
    for number, line in enumerate(lines, start=1):
        if number in skip or not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            found.append((number, BadLine(number, f"not JSON: {exc.msg}")))
            continue
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number, [[[[...
            found.append((number, BadLine(number, f"not JSON: {str(exc)[:80]}")))
            continue
        if not isinstance(record, dict):
            found.append((number, BadLine(number, "not a JSON object")))
            continue
        found.append((number, record))
    return found


def _csv_records(lines: list[str], skip: set[int]) -> list[tuple[int, Record | BadLine]]:
    # Rows are read line by line: a quoted field never spans lines in a billing export, and
    # this keeps every number naming a physical line.
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip(" \t\r")]
    if not numbered:
        return []
    header_number, header_line = numbered[0]
    if header_number in skip:
        return []
    try:
        header = [h.strip(" \t") for h in next(csv.reader(io.StringIO(header_line)))]
    except csv.Error as exc:
        return [(header_number, BadLine(header_number, f"not CSV: {exc}"))]
    problem = _header_problem(header)
    if problem:
        return [(header_number, BadLine(header_number, problem, "header", ",".join(header)))]
    found: list[tuple[int, Record | BadLine]] = []
    for number, line in numbered[1:]:
        if number in skip:
            continue
        try:
            rows = list(csv.reader(io.StringIO(line)))
        except csv.Error as exc:
            found.append((number, BadLine(number, f"not CSV: {exc}")))
            continue
        values = [v.strip(" \t") for v in rows[0]] if len(rows) == 1 else []
        if len(values) != len(header):
            found.append(
                (
                    number,
                    BadLine(
                        number,
                        f"{len(values)} values, but the header names {len(header)} columns",
                    ),
                )
            )
            continue
        found.append((number, {k: v for k, v in zip(header, values, strict=True) if v != ""}))
    return found


def _header_problem(header: list[str]) -> str | None:
    parts = []
    if unknown := [h for h in header if h not in FIELDS]:
        parts.append(f"unknown {', '.join(quote(h, 40) for h in unknown[:5])}")
    if repeated := sorted({h for h in header if header.count(h) > 1}):
        parts.append(f"repeated {', '.join(repeated)}")
    if missing := [f for f in REQUIRED if f not in header]:
        parts.append(f"missing {', '.join(missing)}")
    if not {"bytes", "plan"} & set(header):
        parts.append("missing bytes or plan")
    if not parts:
        return None
    return (
        "a CSV header names configuration, amount, invoice and bytes and/or plan, each once: "
        + "; ".join(parts)
    )


def parse_batch(text: str) -> tuple[list[TopUpLine], list[BadLine]]:
    """Every line checked; duplicate invoices inside the batch are bad lines too."""
    if len(text) > TOPUP_BATCH_MAX_BYTES:
        return [], [BadLine(1, f"larger than {TOPUP_BATCH_MAX_BYTES} characters")]
    lines, bad = _lines(text)
    skip = {b.line for b in bad}
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith(("{", "[")):
        records = _json_records(lines, skip)
    else:
        records = _csv_records(lines, skip)
    good: list[TopUpLine] = []
    seen: dict[str, int] = {}
    for number, record in records:
        if isinstance(record, BadLine):
            bad.append(record)
            continue
        line, problem = _checked(number, record)
        if problem is not None:
            bad.append(problem)
            continue
        assert line is not None
        if line.invoice in seen:
            bad.append(
                BadLine(number, f"repeats line {seen[line.invoice]}", "invoice", line.invoice)
            )
            continue
        seen[line.invoice] = number
        good.append(line)
    if not good and not bad:
        bad.append(BadLine(1, "no top-ups in the file"))
    return good, sorted(bad, key=lambda b: b.line)


def _checked(number: int, record: Record) -> tuple[TopUpLine | None, BadLine | None]:
    def bad(field: str, problem: str) -> tuple[None, BadLine]:
        return None, BadLine(number, problem, field, record.get(field))

    unknown = sorted(str(k) for k in record if k not in FIELDS)
    if unknown:
        return bad(unknown[0], f"unknown field (known: {', '.join(FIELDS)})")
    for name in REQUIRED:
        if name not in record or record[name] in ("", None):
            return bad(name, "missing")
    configuration = record["configuration"]
    if not isinstance(configuration, str) or NAME_RE.fullmatch(configuration) is None:
        return bad("configuration", "lowercase letters, digits, '.', '_' or '-'")
    invoice = record["invoice"]
    if isinstance(invoice, bool) or not isinstance(invoice, str | int):
        return bad("invoice", "letters, digits and . _ / - only")
    if not INVOICE_RE.fullmatch(str(invoice)):
        return bad("invoice", "letters, digits and . _ / - only")
    amount = record["amount"]
    if isinstance(amount, bool) or not isinstance(amount, str | int):
        return bad("amount", 'a decimal string such as "4.99"')
    if not AMOUNT_RE.fullmatch(str(amount)):
        return bad("amount", 'a decimal string such as "4.99"')
    if ("bytes" in record) == ("plan" in record):
        return None, BadLine(number, "give exactly one of bytes or plan")
    granted = None
    plan: str | None = None
    if "bytes" in record:
        value = record["bytes"]
        if isinstance(value, bool) or not isinstance(value, str | int):
            return bad("bytes", "a whole number of bytes")
        text = str(value)
        if BYTES_RE.fullmatch(text) is None:
            return bad("bytes", "a whole number of bytes (ASCII digits)")
        granted = int(text)
        if granted > MAX_BYTES:
            return bad("bytes", f"at most {MAX_BYTES}")
    else:
        named = record["plan"]
        if not isinstance(named, str) or NAME_RE.fullmatch(named) is None:
            return bad("plan", "lowercase letters, digits, '.', '_' or '-'")
        plan = named
    line = TopUpLine(number, configuration, str(invoice), str(amount), granted, plan)
    return line, None


def recorded_differences(
    earlier: TopUp, configuration: str, amount: str, bytes_granted: int
) -> list[str]:
    """How a purchase differs from the one its invoice was recorded with ([] when it is the
    same purchase again: the same configuration, amount and bytes)."""
    found = []
    if earlier.configuration != configuration:
        found.append(f"configuration {earlier.configuration or '(deleted)'} (now {configuration})")
    if _decimal(earlier.amount) != _decimal(amount):
        found.append(f"amount {earlier.amount} (now {amount})")
    if earlier.bytes_granted != bytes_granted:
        found.append(f"bytes {earlier.bytes_granted} (now {bytes_granted})")
    return found


def granted_total_problem(current: int, adding: int) -> str | None:
    """Why granting ``adding`` bytes more to a configuration holding ``current`` cannot be
    stored (its running total is a signed 64-bit integer), or None."""
    if current + adding > MAX_BYTES:
        return (
            f"would bring the configuration's granted total to {current + adding} bytes, "
            f"past {MAX_BYTES}"
        )
    return None


def _decimal(text: str) -> Decimal | str:
    try:
        return Decimal(text)
    except InvalidOperation:
        return text
