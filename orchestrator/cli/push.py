"""`wgfleet apply|reconcile`: the store's desired state pushed to the nodes (`apply -f`: see
cli.pipeline)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from orchestrator.cli.common import node_names, push_exit, session, shard_argument
from orchestrator.cli.output import Output, Registrar
from orchestrator.errors import UsageError
from orchestrator.settings import Settings


def cmd_apply(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """push the whole desired state to the nodes"""
    from orchestrator.service import push as push_service

    if getattr(args, "file", None) or getattr(args, "plan_file", None):
        from orchestrator.cli.pipeline import cmd_apply_file

        if getattr(args, "shard", None):
            raise UsageError("--shard pushes the store's state; a fleet file applies whole")

        return cmd_apply_file(args, settings, output)

    shard = shard_argument(args)
    with session(settings, args, output, write=True, shard=shard) as fleet:
        result = push_service.push(
            fleet,
            node_names(args.nodes) if args.nodes else None,
            shard=shard,
            dry_run=args.dry_run,
            progress=lambda n: output.progress(
                f"{n.node}: {'ok' if n.ok else 'FAILED ' + n.error}"
            ),
        )

    def render() -> None:
        title = "plan (nothing was changed)" if result.dry_run else "apply"
        table = Table("node", "result", "add", "change", "remove", "unchanged", title=title)
        for n in result.nodes:
            verdict = "[green]ok[/green]" if n.ok else f"[red]{n.error}[/red]"
            row = n.as_dict()
            table.add_row(
                n.node,
                verdict,
                str(row["added"]),
                str(row["changed"]),
                str(row["removed"]),
                str(row["unchanged"]),
            )
        output.out.print(table)

    output.result(result.as_dict(), render)
    return push_exit(output, result)


def register(commands: Any, add: Registrar) -> None:
    for name in ("apply", "reconcile"):
        apply = add(commands, name, cmd_apply)
        apply.add_argument(
            "--dry-run", action="store_true", help="show each node's plan, change nothing"
        )
        apply.add_argument("--nodes", action="append", metavar="NODE[,NODE..]")
        apply.add_argument(
            "--shard", metavar="I/N", help="push only shard I of N (see `sync --shard`)"
        )
    apply_file = commands.choices["apply"]  # `reconcile` stays a push of the store's state
    apply_file.description = (
        "push the whole desired state to the nodes; with -f, first make the fleet match a "
        "fleet file (exactly the changes `wgfleet plan -f` shows)"
    )
    apply_file.add_argument("-f", "--file", metavar="FILE", help="a fleet file to apply")
    apply_file.add_argument(
        "--plan-file", metavar="PLAN", help="apply a plan saved by `plan --out`, if still valid"
    )
    apply_file.add_argument("--yes", action="store_true", help="apply without asking")
