"""`wgfleet alerts`: what needs the operator, the TUI dashboard's alerts (core/alerts.py), for
cron, monitoring and terminals without the TUI."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from typing import Any

from rich.table import Table

from orchestrator.cli.common import session
from orchestrator.cli.output import Output, Registrar
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def cmd_alerts(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """what needs the operator, errors first (exit 1 if any alert is an error)"""
    from orchestrator.service import dashboard

    now = int(time.time())
    with session(settings, args, output) as fleet:
        reach = dashboard.check_reachability(fleet, now) if args.check else {}
        alerts = dashboard.fleet_dashboard(fleet, date.today(), now, reach)

    def render() -> None:
        if not alerts.alerts:
            output.out.print("nothing needs you")
            return
        table = Table("severity", "alert", "subject", "detail")
        for alert in alerts.alerts:
            style = "red" if alert.severity == "error" else "yellow"
            table.add_row(alert.severity, str(alert.kind), alert.subject, alert.detail, style=style)
        output.out.print(table)

    output.result(alerts.as_dict(), render)
    errors = [a for a in alerts.alerts if a.severity == "error"]
    for alert in errors:  # exit 1 names what failed on stderr, as every command does
        sys.stderr.write(f"wgfleet: {alert.kind}: {alert.subject}: {alert.detail}\n")
    return ExitCode.FAILED if errors else ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    alerts = add(commands, "alerts", cmd_alerts)
    alerts.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="judge without asking the nodes (no key exchange; no unreachable alert)",
    )
