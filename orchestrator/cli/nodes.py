"""`wgfleet deploy` and `wgfleet audit`: the nodes themselves, through Ansible and SSH."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rich.table import Table

from orchestrator.cli.common import confirm, session
from orchestrator.cli.output import Output, Registrar, command_group
from orchestrator.errors import ExitCode, UsageError
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
    """deploy hardened, no-log WireGuard nodes with Ansible"""
    from orchestrator.service import deploy
    from orchestrator.service.context import open_fleet

    mode = " (check mode)" if args.check else ""
    with open_fleet(settings, write=True, operation="deploy") as fleet:
        result = _run_with_live_view(
            output,
            f"deploy{mode}",
            lambda on_update: deploy.deploy(
                fleet,
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
    """check every node against the no-log promise"""
    from orchestrator.service import audit
    from orchestrator.service.context import open_fleet

    with open_fleet(settings, write=True, operation="audit") as fleet:
        result = audit.audit(
            fleet, limit=args.limit, needles=args.needle or (), progress=output.progress
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
    deploy = add(commands, "deploy", cmd_deploy)
    deploy.add_argument("--limit", metavar="PATTERN", help="only these hosts (Ansible pattern)")
    deploy.add_argument(
        "--check", action="store_true", help="change nothing; report what would change, with diffs"
    )
    deploy.add_argument(
        "--full",
        action="store_true",
        help="run Ansible on every node, also those verified unchanged since their last full run",
    )

    audit = add(commands, "audit", cmd_audit)
    audit.add_argument("--limit", metavar="NODES", help="comma-separated node names")
    audit.add_argument(
        "--needle",
        action="append",
        metavar="TEXT",
        help="also fail if TEXT is on a node's disk (e.g. a client's address); repeatable",
    )


def cmd_nodes_trust(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """pin a node's changed SSH host key after you checked its fingerprint"""
    from orchestrator.core.inventory import key_fingerprint
    from orchestrator.service.context import open_fleet
    from orchestrator.service.host_keys import offered_host_key, pinned_fingerprints, trust_node

    with open_fleet(settings, operation="nodes trust") as fleet:
        offered = offered_host_key(fleet, args.node)
        pinned = pinned_fingerprints(fleet, args.node)
    new = key_fingerprint(offered.key_base64)
    if pinned == [new]:
        output.result(
            {"node": args.node, "fingerprint": new, "changed": False},
            lambda: output.out.print(f"{args.node} offers the pinned key {new}; nothing to do"),
        )
        return ExitCode.OK
    expected = args.fingerprint
    if expected is None:
        if args.yes or not sys.stdin.isatty():
            raise UsageError(
                f"{args.node} offers {new} (pinned: {', '.join(pinned) or 'none'}); confirm by "
                f"running again with --fingerprint {new} after checking it on the node's console"
            )
        output.err.print(
            f"{args.node} offers {new}; pinned: {', '.join(pinned) or 'none'}", markup=False
        )
        confirm(args, f"trust {new} for {args.node}?")
        expected = new
    with open_fleet(settings, write=True, operation="nodes trust") as fleet:
        old, new = trust_node(fleet, args.node, expected)
    output.result(
        {"node": args.node, "fingerprint": new, "previous": old, "changed": True},
        lambda: output.out.print(f"{args.node}: now pinned to {new} (was {old or 'unpinned'})"),
    )
    return ExitCode.OK


def register_trust(node_commands: Any, add: Registrar) -> None:
    trust = add(node_commands, "trust", cmd_nodes_trust)
    trust.add_argument("node")
    trust.add_argument(
        "--fingerprint", metavar="SHA256:...", help="the fingerprint you verified on the node"
    )
    trust.add_argument("--yes", action="store_true", help="never ask (needs --fingerprint)")


def cmd_nodes_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """nodes with pending pushes and key age"""
    from orchestrator.service import catalog

    with session(settings, args, output) as fleet:
        listed = catalog.nodes(fleet)

    def render() -> None:
        table = Table(
            "node", "address", "tunnel pool", "configurations", "pending push", "key since"
        )
        for n in listed:
            table.add_row(
                n.name,
                n.address,
                n.tunnel_network,
                str(n.configurations),
                "yes" if n.pending else "no",
                str(n.key_created_on or "-"),
            )
        output.out.print(table)

    output.result([n.as_dict() for n in listed], render)
    return ExitCode.OK


def register_node_group(commands: Any, add: Registrar) -> None:
    node_commands = command_group(commands, "nodes", "the nodes the store knows")
    add(node_commands, "list", cmd_nodes_list)
    register_trust(node_commands, add)
