"""`wgfleet controllers add|list|revoke`: the fleet's controllers and their SSH keys."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from orchestrator.cli.common import session
from orchestrator.cli.output import Output, Registrar, command_group
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def cmd_controllers_add(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """register a controller's public SSH keys (this one's or --keys DIR's) for deploy"""
    from orchestrator.service.controllers import add_controller

    with session(settings, args, output, write=True) as fleet:
        added = add_controller(fleet, args.name, args.keys)
    output.result(
        added.as_dict(),
        lambda: output.out.print(
            f"controller {added.name} registered; run `wgfleet deploy` to install its keys"
        ),
    )
    return ExitCode.OK


def cmd_controllers_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """list the registered controllers and their key fingerprints"""
    from orchestrator.service.controllers import list_controllers

    with session(settings, args, output) as fleet:
        found = list_controllers(fleet)

    def render() -> None:
        table = Table("name", "state", "registered", "revoked", "deploy key")
        for c in found:
            shown = c.as_dict()
            table.add_row(
                c.name,
                shown["state"],
                shown["added_on"],
                shown["revoked_on"] or "",
                shown["fingerprints"]["deploy"],
            )
        output.out.print(table)

    output.result([c.as_dict() for c in found], render)
    return ExitCode.OK


def cmd_controllers_revoke(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """cut a controller off: its keys removed from every node, checked there"""
    from orchestrator.service.controllers import revoke_controller

    with session(settings, args, output, write=True) as fleet:
        done = revoke_controller(fleet, args.name)
    output.result(
        done.as_dict(),
        lambda: output.out.print(
            f"controller {done.controller.name} revoked on {len(done.nodes)} node(s)"
        ),
    )
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    group = command_group(commands, "controllers", "the fleet's controllers and their SSH keys")
    made = add(group, "add", cmd_controllers_add)
    made.add_argument("name", help="the controller's name, e.g. dc2")
    made.add_argument(
        "--keys",
        type=Path,
        metavar="DIR",
        help="another controller's deploy/collector/push .pub files (default: this one's keys)",
    )
    add(group, "list", cmd_controllers_list)
    revoke = add(group, "revoke", cmd_controllers_revoke)
    revoke.add_argument("name")
