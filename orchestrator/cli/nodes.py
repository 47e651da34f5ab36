"""`wgfleet deploy` and `wgfleet audit`: the nodes themselves, through Ansible and SSH."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rich.table import Table

from orchestrator.cli.output import Output, Registrar
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def recap_table(recap: Any, title: str, verified: Any = ()) -> Table:
    table = Table(title=title)
    for column in ("host", "status", "ok", "changed", "failed", "unreachable", "task / error"):
        table.add_column(column)
    colours = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red"}
    for name in sorted(recap.hosts):
        host = recap.hosts[name]
        colour = colours.get(host.status, "white")
        table.add_row(
            name,
            f"[{colour}]{host.status}[/{colour}]",
            str(host.ok),
            str(host.changed),
            str(host.failed),
            str(host.unreachable),
            host.error or host.current_task,
        )
    for name in verified:
        table.add_row(
            name, "[green]verified[/green]", "", "", "", "", "unchanged since its last full run"
        )
    return table


def _run_with_live_view(output: Output, title: str, work: Callable[[Any], Any]) -> Any:
    """Run ``work(on_update)`` showing a live per-host table on a terminal, nothing otherwise."""
    if output.quiet or output.json_mode or not output.err.is_terminal:
        return work(None)
    from rich.live import Live

    from orchestrator.core.playbook_events import PlayRecap

    with Live(recap_table(PlayRecap(), title), console=output.err, transient=True) as live:

        def on_update(recap: Any, _event: Any) -> None:
            live.update(recap_table(recap, title))

        return work(on_update)


def cmd_deploy(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import deploy

    mode = " (check mode)" if args.check else ""
    result = _run_with_live_view(
        output,
        f"deploy{mode}",
        lambda on_update: deploy.deploy(
            settings,
            limit=args.limit,
            check=args.check,
            diff=args.check,
            on_update=on_update,
            full=args.full,
        ),
    )

    def render() -> None:
        output.out.print(recap_table(result.run.recap, f"deploy{mode}", result.verified))
        for verdict in result.verdicts:
            if not verdict.converged:
                output.out.print(f"{verdict.node}: full run ({verdict.reason})", markup=False)
        for name, host in sorted(result.run.recap.hosts.items()):
            for diff in host.diffs:
                output.out.print(f"--- {name}", markup=False)
                output.out.print(diff, markup=False, highlight=False)

    output.result(result.as_dict(), render)
    if not result.ok:
        failed = result.failed_hosts or ["(no host reported)"]
        for name in failed:
            host = result.run.recap.hosts.get(name)
            reason = f"{host.status}: {host.error}" if host else result.run.status
            sys.stderr.write(f"wgfleet: deploy failed on {name}: {reason}\n")
        return ExitCode.FAILED
    return ExitCode.OK


def cmd_audit(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import audit

    result = audit.audit(
        settings, limit=args.limit, needles=args.needle or (), progress=output.progress
    )

    def render() -> None:
        table = Table("node", "check", "result", "evidence", title="audit")
        for check in result.checks:
            verdict = "[green]pass[/green]" if check.passed else "[red]FAIL[/red]"
            table.add_row(check.node, check.check, verdict, check.evidence)
        output.out.print(table)

    output.result(result.as_dict(), render)
    for check in result.failed:
        sys.stderr.write(
            f"wgfleet: audit failed on {check.node}: {check.check}: {check.evidence}\n"
        )
    return ExitCode.OK if result.ok else ExitCode.FAILED


def register(commands: Any, add: Registrar) -> None:
    deploy = add(
        commands, "deploy", cmd_deploy, "deploy hardened, no-log WireGuard nodes with Ansible"
    )
    deploy.add_argument("--limit", metavar="PATTERN", help="only these hosts (Ansible pattern)")
    deploy.add_argument(
        "--check", action="store_true", help="change nothing; report what would change, with diffs"
    )
    deploy.add_argument(
        "--full",
        action="store_true",
        help="run Ansible on every node, also those verified unchanged since their last full run",
    )

    audit = add(commands, "audit", cmd_audit, "check every node against the no-log promise")
    audit.add_argument("--limit", metavar="NODES", help="comma-separated node names")
    audit.add_argument(
        "--needle",
        action="append",
        metavar="TEXT",
        help="also fail if TEXT is on a node's disk (e.g. a client's address); repeatable",
    )
