"""`wgfleet plans set|list`: quota plans."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from rich.table import Table

from orchestrator.cli.common import session
from orchestrator.cli.output import (
    SIZE_HELP,
    Output,
    Registrar,
    byte_amount,
    command_group,
    positive_int,
)
from orchestrator.core.models import Plan, ResetRule
from orchestrator.core.units import human_bytes
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings


def cmd_plans_set(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """create or change a plan"""
    from orchestrator.core.peers import NAME_RE
    from orchestrator.core.quoting import quote
    from orchestrator.core.topup_batch import AMOUNT_RE

    if not NAME_RE.fullmatch(args.name):
        raise UsageError(f"plan {quote(args.name)}: use lowercase letters, digits, '.', '_' or '-'")
    if args.price is not None and not AMOUNT_RE.fullmatch(args.price):
        raise UsageError(f"--price {quote(args.price)}: a decimal amount such as 4.99")
    if not 1 <= args.anchor_day <= 28:
        raise UsageError(f"--anchor-day {args.anchor_day}: must be 1..28")
    valid_until = None
    if args.valid_until is not None:
        try:
            valid_until = date.fromisoformat(args.valid_until)
        except ValueError:
            raise UsageError(
                f"--valid-until {quote(args.valid_until)}: a date as YYYY-MM-DD"
            ) from None
    plan = Plan(
        args.name,
        args.quota,
        ResetRule(args.reset),
        args.anchor_day,
        args.price,
        args.validity_days,
        valid_until,
    )
    from orchestrator.service import catalog

    with session(settings, args, output, write=True) as fleet:
        catalog.set_plan(fleet, plan)
    output.result(plan.__dict__, lambda: output.out.print(f"plan {plan.name} saved"))
    return ExitCode.OK


def cmd_plans_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """list plans"""
    from orchestrator.service import catalog

    with session(settings, args, output) as fleet:
        plans = catalog.plans(fleet)

    def render() -> None:
        table = Table("plan", "quota", "reset", "anchor day", "price", "validity")
        for p in plans:
            validity = " / ".join(
                part
                for part in (
                    f"{p.validity_days} days" if p.validity_days else "",
                    f"until {p.valid_until}" if p.valid_until else "",
                )
                if part
            )
            table.add_row(
                p.name,
                human_bytes(p.quota_bytes),
                p.reset.value,
                str(p.anchor_day),
                p.price or "-",
                validity or "-",
            )
        output.out.print(table)

    output.result([p.__dict__ for p in plans], render)
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    plan_commands = command_group(commands, "plans", "quota plans")
    plan_set = add(plan_commands, "set", cmd_plans_set)
    plan_set.add_argument("name")
    plan_set.add_argument(
        "--quota",
        type=byte_amount,
        required=True,
        metavar="SIZE",
        help=SIZE_HELP,
    )
    plan_set.add_argument("--reset", choices=[r.value for r in ResetRule], default="never")
    plan_set.add_argument(
        "--anchor-day", type=positive_int, default=1, help="monthly reset day (1-28)"
    )
    plan_set.add_argument("--price", help="price as billed, e.g. 4.99")
    plan_set.add_argument(
        "--validity-days",
        type=positive_int,
        metavar="DAYS",
        help="valid this many days from activation; buying it again (topup --plan) renews it",
    )
    plan_set.add_argument(
        "--valid-until", metavar="YYYY-MM-DD", help="the plan's last valid day, for everyone"
    )
    add(plan_commands, "list", cmd_plans_list)
