"""The command line every benchmark shares: its own arguments, then a table or --json."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

Report = dict[str, Any]


def run_main(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    bench: Callable[[argparse.Namespace], Report],
    print_table: Callable[[Report], None],
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
    return 0
