"""The command line every benchmark shares: its own arguments, then a table or --json."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

Report = dict[str, Any]


def run_main(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    bench: Callable[[argparse.Namespace], Report],
    print_table: Callable[[Report], None],
    exit_code: Callable[[Report], int] = lambda report: 0,
) -> int:
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = bench(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return exit_code(report)


_CLAUSE = re.compile(r"^(<=|>=)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(.*)$")


def _measured(row: Report, unit: str) -> float | None:
    """The figure of ``row`` a target clause in ``unit`` speaks of (None: not in the row)."""
    field, scale = {
        "": ("ratio", 1.0),
        "s": ("wall_s", 1.0),
        "ms": ("wall_s", 1000.0),
        "MB": ("peak_rss_mb", 1.0),
        "M/s": ("lines_per_s", 1e-6),
        "/s": ("rows_per_s", 1.0),
    }.get(unit, ("", 0.0))
    value = row.get(field) if field else None
    return None if value is None else float(value) * scale


def target_met(row: Report) -> bool | None:
    """Whether the row meets its target, read from the target text every benchmark prints
    ("<= 0.1, <= 25 s", ">= 150,000/s", "<= 250 MB"): each clause a bound on the ratio (no
    unit), the wall time (s, ms), peak RSS (MB), lines (M/s) or rows (/s) per second. None
    when no clause can be checked (a reference, a comparison row)."""
    verdicts = []
    for clause in str(row.get("target") or "").split(", "):
        matched = _CLAUSE.match(clause.strip())
        if matched is None:
            continue
        bound, limit, unit = matched[1], float(matched[2].replace(",", "")), matched[3].strip()
        value = _measured(row, unit)
        if value is not None:
            verdicts.append(value <= limit if bound == "<=" else value >= limit)
    return all(verdicts) if verdicts else None
