"""`wgfleet topup`: quota granted to a configuration, once per invoice."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from orchestrator.cli.common import session
from orchestrator.cli.output import Output, Registrar, grant_arguments
from orchestrator.core.input_limits import TOPUP_BATCH_MAX_BYTES
from orchestrator.errors import ExitCode, UsageError
from orchestrator.service.user_files import read_input_text
from orchestrator.settings import Settings


def cmd_topup(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """grant quota to a configuration, once per invoice"""
    from orchestrator.service import peers

    if args.batch is not None:
        return _topup_batch(args, settings, output)
    if args.configuration is None or args.invoice is None or args.amount is None:
        raise UsageError("give CONFIGURATION --amount A --invoice INV (--bytes N | --plan P)")
    with session(settings, args, output, store_only=True) as fleet:
        topup, created = peers.topup(
            fleet,
            args.configuration,
            invoice=args.invoice,
            amount=args.amount,
            bytes_granted=args.bytes,
            plan=args.plan,
        )
    output.result(
        {**topup.__dict__, "created": created},
        lambda: output.out.print(topup.outcome(created)),
    )
    return ExitCode.OK


def _topup_batch(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service.billing import topup_batch

    if args.configuration or args.invoice or args.amount or args.bytes or args.plan:
        raise UsageError("--from takes everything from the file: give no other top-up options")
    text = read_input_text(args.batch, TOPUP_BATCH_MAX_BYTES, "a top-up batch")
    with session(settings, args, output, store_only=True) as fleet:
        outcomes = topup_batch(fleet, text, args.batch)

    def render() -> None:
        table = Table("line", "invoice", "configuration", "bytes", "result")
        for o in outcomes:
            table.add_row(
                str(o.line),
                o.invoice,
                o.configuration,
                str(o.bytes_granted),
                "granted" if o.created else "already recorded",
            )
        output.out.print(table)

    output.result([o.as_dict() for o in outcomes], render)
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    topup = add(commands, "topup", cmd_topup)
    topup.add_argument("configuration", nargs="?")
    grant_arguments(topup, "--bytes")
    topup.add_argument("--amount", help="amount billed, e.g. 4.99")
    topup.add_argument("--invoice", help="invoice number (unique)")
    topup.add_argument(
        "--from",
        dest="batch",
        metavar="FILE",
        help="JSON lines or CSV (configuration, amount, invoice, bytes|plan); - reads stdin; "
        "all lines are checked before any is applied",
    )
