"""`wgfleet diagnose`: temporary, expiring diagnostics on one node."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from orchestrator.cli.output import Output, Registrar, fail_lines
from orchestrator.core.keys import parse_duration
from orchestrator.core.quoting import quote
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings

ACTIONS = ("status", "show", "stop")


def cmd_diagnose(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """temporary diagnostics on one node, ended by the node itself: `diagnose NODE --for 30m [--peer
    CONFIG]`, `diagnose status [NODE]`, `diagnose show NODE`, `diagnose stop NODE`
    """
    from orchestrator.service import diagnostics
    from orchestrator.service.context import open_fleet

    if args.target not in ACTIONS:
        node = args.target
        if args.node is not None:
            raise UsageError(f"diagnose {node}: one node, then --for (got {quote(args.node)} too)")
        if args.duration is None:
            raise UsageError(f"diagnose {node}: give --for, e.g. --for 30m")
        try:
            seconds = parse_duration(args.duration)
        except ValueError as exc:
            raise UsageError(f"--for {quote(args.duration)}: {exc}") from None
        with open_fleet(settings, operation="diagnose") as fleet:
            state = diagnostics.start(fleet, node, seconds, args.peer)
        output.result(
            state.as_dict(),
            lambda: output.out.print(
                f"diagnostics on {node} ({state.interface}"
                + (f", peer {state.peer}" if state.peer else "")
                + f") for {seconds} s; the node ends them by itself"
            ),
        )
        return ExitCode.OK
    if args.duration is not None or args.peer is not None:
        raise UsageError(f"diagnose {args.target}: --for and --peer only start a diagnostic")
    if args.target == "status":
        with open_fleet(settings, operation="diagnose status") as fleet:
            states = diagnostics.status(fleet, [args.node] if args.node else None)

        def render() -> None:
            table = Table("node", "active", "interface", "peer", "ends in", "expiry timer")
            for s in states:
                table.add_row(
                    s.node,
                    "yes" if s.active else ("-" if s.view is None else s.view),
                    s.interface or "-",
                    s.peer or ("all" if s.active else "-"),
                    f"{max(0, s.seconds_left or 0)} s" if s.active else "-",
                    ("yes" if s.timer else "MISSING") if s.active else "-",
                )
            output.out.print(table)

        output.result([s.as_dict() for s in states], render)
        failed = [(s.node, s.error) for s in states if s.error]
        fail_lines("diagnose status failed on", failed)
        return ExitCode.FAILED if failed else ExitCode.OK
    if args.node is None:
        raise UsageError(f"diagnose {args.target} NODE: name the node")
    if args.target == "show":
        with open_fleet(settings, operation="diagnose show") as fleet:
            state = diagnostics.show(fleet, args.node)
        output.result(
            state.as_dict(),
            lambda: output.out.print(
                state.view if state.active and state.view else f"no diagnostic on {args.node}",
                markup=False,
            ),
        )
        return ExitCode.OK
    with open_fleet(settings, operation="diagnose stop") as fleet:
        stopped = diagnostics.stop(fleet, args.node)
    output.result(
        {"node": args.node, "stopped": stopped},
        lambda: output.out.print(
            f"diagnostics on {args.node} ended" if stopped else f"no diagnostic on {args.node}"
        ),
    )
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    diagnose = add(commands, "diagnose", cmd_diagnose)
    diagnose.add_argument("target", metavar="NODE|status|show|stop")
    diagnose.add_argument("node", nargs="?", metavar="NODE")
    diagnose.add_argument(
        "--for", dest="duration", metavar="DURATION", help="how long, e.g. 30m (at most 24h)"
    )
    diagnose.add_argument("--peer", metavar="CONFIG", help="only this configuration's peer")
