"""`wgfleet trail`: the writing runs of every controller sharing this store, newest first."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from orchestrator.cli.common import session
from orchestrator.cli.output import Output, Registrar, positive_int
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cmd_trail(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """the writing runs of every controller on this store (what, where, when, how it ended)"""
    from orchestrator.service import catalog

    with session(settings, args, output) as fleet:
        ran = catalog.operations(fleet, args.last)

    def render() -> None:
        table = Table("started (UTC)", "operation", "controller", "by", "took", "outcome", "steps")
        for op in ran:
            table.add_row(
                _utc(op.started_at),
                op.operation,
                op.controller,
                op.actor or "",
                f"{op.finished_at - op.started_at} s",
                op.outcome,
                str(op.steps),
            )
        output.out.print(table)

    output.result([op.__dict__ for op in ran], render)
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    trail = add(commands, "trail", cmd_trail)
    trail.add_argument(
        "--last", type=positive_int, default=50, metavar="N", help="how many (default 50)"
    )
