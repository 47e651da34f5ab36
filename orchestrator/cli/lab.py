"""`wgfleet lab ...`: the lab fleet on this machine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.table import Table

from orchestrator.cli.output import Output, Registrar, command_group, fail_lines, positive_int
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings


def render_lab_status(output: Output, status: Any) -> None:
    if not status.up:
        output.out.print(f"lab {status.lab!r} is down")
        return
    table = Table(title=f"lab {status.lab!r} on {status.subnet} (bridge {status.bridge})")
    for column in ("node", "underlay", "running", "systemd", "host key"):
        table.add_column(column)
    for node in status.nodes:
        table.add_row(
            node.name,
            node.address,
            "yes" if node.running else "[red]no[/red]",
            node.system_state,
            node.host_key_fingerprint or "-",
        )
    output.out.print(table)
    if status.clients:
        clients = Table("client", "underlay", "namespace", "tunnel")
        for client in status.clients:
            clients.add_row(
                client.name,
                client.address,
                "yes" if client.namespace else "[red]missing[/red]",
                f"up (pid {client.tunnel_pid})" if client.tunnel_pid else "down",
            )
        output.out.print(clients)
    for message in status.messages:
        output.out.print(message)
    output.out.print(f"inventory: {status.inventory}\nknown_hosts: {status.known_hosts}")


def cmd_lab_up(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """build and boot the lab fleet (idempotent)"""
    from orchestrator.service import lab

    status = lab.lab_up(settings, args.nodes, args.clients, output.progress)
    output.result(status.as_dict(), lambda: render_lab_status(output, status))
    return ExitCode.OK if status.healthy else ExitCode.FAILED


def cmd_lab_rootfs(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """build the cached node root filesystem (once)"""
    from orchestrator.service import lab

    path = lab.build_rootfs(settings, output.progress)
    output.result({"rootfs": str(path)}, lambda: output.out.print(f"rootfs ready: {path}"))
    return ExitCode.OK


def cmd_lab_status(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """show the lab's nodes and clients"""
    from orchestrator.service import lab

    status = lab.lab_status(settings)
    output.result(status.as_dict(), lambda: render_lab_status(output, status))
    if not status.up:
        return ExitCode.OK
    # A node that runs but cannot be asked (down sshd, a host key that is not the pinned one)
    # is named on stderr, like a failed node of any other command.
    fail_lines(
        "lab status:",
        [
            (n.name, n.system_state)
            for n in status.nodes
            if n.running and n.system_state not in ("running", "degraded")
        ],
    )
    return ExitCode.OK if status.healthy else ExitCode.FAILED


def cmd_lab_down(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """remove every namespace, mount, bridge and process of the lab"""
    from orchestrator.service import lab

    removed = lab.lab_down(settings, output.progress)
    output.result(
        {"lab": settings.lab.name, "removed": removed},
        lambda: output.out.print(
            f"lab {settings.lab.name!r} is down"
            + (f" ({len(removed)} objects removed)" if removed else "")
        ),
    )
    return ExitCode.OK


def cmd_lab_stop(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """power one node off (its disk stays)"""
    from orchestrator.service import lab

    lab.node_stop(settings, args.node)
    output.result(
        {"node": args.node, "running": False}, lambda: output.out.print(f"{args.node} stopped")
    )
    return ExitCode.OK


def cmd_lab_start(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """boot a stopped node again"""
    from orchestrator.service import lab

    lab.node_start(settings, args.node, output.progress)
    output.result(
        {"node": args.node, "running": True}, lambda: output.out.print(f"{args.node} running")
    )
    return ExitCode.OK


def _relay(stdout: str, stderr: str) -> None:
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)


def cmd_lab_exec(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """run a command on a node over pinned SSH"""
    from orchestrator.service import lab

    argv = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
    if not argv:
        raise UsageError("lab exec: give the command to run after the node name")
    result = lab.node_exec(settings, args.node, argv)
    output.result(
        {
            "node": args.node,
            "status": result.status,
            "stdout": result.stdout,
            "stderr": result.stderr,
        },
        lambda: _relay(result.stdout, result.stderr),
    )
    return result.status if 0 <= result.status < 256 else ExitCode.FAILED


def cmd_lab_tunnel_up(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """bring a client's tunnel up from a wg-quick file"""
    from orchestrator.service import lab

    text = lab.read_client_config(args.config_file)
    pid = lab.tunnel_up(settings, args.client, text)
    output.result(
        {"client": args.client, "tunnel_pid": pid},
        lambda: output.out.print(f"{args.client}: tunnel up (wireguard-go pid {pid})"),
    )
    return ExitCode.OK


def cmd_lab_tunnel_down(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """take a client's tunnel down"""
    from orchestrator.service import lab

    lab.tunnel_down(settings, args.client)
    output.result(
        {"client": args.client, "tunnel_pid": None},
        lambda: output.out.print(f"{args.client}: tunnel down"),
    )
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    lab = commands.add_parser(
        "lab",
        help="a real fleet of Debian nodes and VPN clients on this machine",
        description="Build, inspect and tear down a lab fleet: systemd-nspawn nodes in their own "
        "network namespaces on a bridge in 198.18.0.0/15, and client namespaces.",
    )
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = add(lab_commands, "up", cmd_lab_up)
    up.add_argument("--nodes", type=positive_int, default=3, help="number of nodes (default 3)")
    up.add_argument(
        "--clients", type=positive_int, default=2, help="number of client namespaces (default 2)"
    )
    add(lab_commands, "rootfs", cmd_lab_rootfs)
    add(lab_commands, "status", cmd_lab_status)
    add(lab_commands, "down", cmd_lab_down)
    stop = add(lab_commands, "stop", cmd_lab_stop)
    stop.add_argument("node")
    start = add(lab_commands, "start", cmd_lab_start)
    start.add_argument("node")
    execute = add(lab_commands, "exec", cmd_lab_exec)
    execute.add_argument("node")
    execute.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    tunnel_commands = command_group(lab_commands, "tunnel", "a lab client's WireGuard tunnel")
    tunnel_on = add(tunnel_commands, "up", cmd_lab_tunnel_up)
    tunnel_on.add_argument("client")
    tunnel_on.add_argument("config_file", metavar="CONFIG_FILE")
    tunnel_off = add(tunnel_commands, "down", cmd_lab_tunnel_down)
    tunnel_off.add_argument("client")
