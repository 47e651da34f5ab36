"""`wgfleet privacy report`: the data inventory a provider can publish, from the live system."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.table import Table

from orchestrator.cli.output import Output, Registrar, command_group
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def cmd_privacy_report(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """every kind of record kept, where, why and for how long, and what is never kept"""
    from orchestrator.service.context import open_fleet
    from orchestrator.service.privacy import privacy_report

    with open_fleet(settings) as fleet:
        report = privacy_report(fleet)

    def render() -> None:
        table = Table(
            "record", "what", "why", "kept", title=f"What the {report['store']} store keeps"
        )
        for record in report["records"]:
            table.add_row(record["table"], record["what"], record["why"], record["kept"])
        output.out.print(table)
        output.out.print("Never kept: " + "; ".join(report["never_kept"]) + ".")
        output.out.print(f"Contact numbers: {report['contact_numbers']}.")
        output.out.print("Every client configuration carries:")
        for fact in report["client_configs"]:
            output.out.print(f"- {fact}")
        output.out.print("Monitoring metrics (`sync --every --metrics`, docs/METRICS.md):")
        for fact in report["metrics"]:
            output.out.print(f"- {fact}")
        output.out.print(f"Nodes' journal: {report['nodes']['journal']}.")
        output.out.print(f"Nodes' resolver: {report['nodes']['resolver']}.")
        audits = report["nodes"]["audit"]
        if audits:
            output.out.print(
                "Last audit: " + ", ".join(f"{node} {verdict}" for node, verdict in audits.items())
            )
        for note in report["notes"]:
            output.out.print(f"- {note}")

    output.result(report, render)
    if report["undeclared"]:
        sys.stderr.write(
            "wgfleet: the privacy profile does not describe "
            + ", ".join(report["undeclared"])
            + ": the report cannot vouch for them\n"
        )
        return ExitCode.FAILED
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    actions = command_group(commands, "privacy", "the privacy profile in force")
    add(actions, "report", cmd_privacy_report)
