"""`wgfleet peers add|list|show|enable|disable|remove`: configurations (WireGuard peers)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from orchestrator.cli.client_configs import (
    batch_files,
    client_config_destination,
    config_dict,
    emit_client_configs,
    write_batch_configs,
)
from orchestrator.cli.common import confirm, node_names, push_exit, session
from orchestrator.cli.output import Output, Registrar, command_group, grant_arguments
from orchestrator.cli.secret_output import client_config_arguments
from orchestrator.core.input_limits import PEER_BATCH_MAX_BYTES
from orchestrator.core.models import Configuration, DisabledReason
from orchestrator.core.units import human_bytes
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings


def cmd_peers_add(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """new configuration: keys, addresses, client config shown once"""
    from orchestrator.service import peers

    if args.batch is not None:
        return _peers_add_batch(args, settings, output)
    if args.out_dir is not None:
        raise UsageError("--out-dir goes with --from FILE; one configuration takes --out FILE")
    if args.account is None:
        raise UsageError("give ACCOUNT (or --from FILE for many configurations)")
    if bool(args.nodes) == args.all_nodes:
        raise UsageError("give exactly one of --nodes NODE[,NODE..] or --all-nodes")
    destination = client_config_destination(args, output)
    with session(settings, args, output, write=True) as fleet:
        chosen = sorted(fleet.nodes()) if args.all_nodes else node_names([args.nodes])
        destination.check(chosen)
        created = peers.add_configuration(
            fleet,
            args.account,
            nodes=None if args.all_nodes else chosen,
            quota_bytes=args.quota,
            plan=args.plan,
            name=args.name,
            split_tunnel=args.split_tunnel,
        )
    config = created.configuration
    emit_client_configs(
        args,
        output,
        destination,
        {**config_dict(config), "push": created.push.as_dict()},
        created.client_configs,
        f"configuration {config.name} for {config.account} on {', '.join(config.nodes)}",
        config.name,
    )
    return push_exit(output, created.push)


def _peers_add_batch(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """Many configurations from a file, their client configs written once into --out-dir."""
    from orchestrator.service.peer_batch import add_configurations
    from orchestrator.service.user_files import empty_private_output_dir, read_input_text

    given = [
        flag
        for flag, value in (
            ("ACCOUNT", args.account),
            ("--nodes", args.nodes),
            ("--all-nodes", args.all_nodes),
            ("--quota", args.quota),
            ("--plan", args.plan),
            ("--name", args.name),
            ("--split-tunnel", args.split_tunnel),
            ("--out", args.out),
            ("--qr", args.qr),
        )
        if value
    ]
    if given:
        raise UsageError(f"--from takes every configuration from the file: drop {given[0]}")
    if args.out_dir is None:
        raise UsageError(
            "--from needs --out-dir DIR: each client configuration is written there once "
            "(0600) and kept nowhere else"
        )
    # Checked before the store changes: a new or empty private directory, never a link.
    text = read_input_text(args.batch, PEER_BATCH_MAX_BYTES, "a configuration batch")
    out_dir = empty_private_output_dir(Path(args.out_dir))
    with session(settings, args, output, write=True) as fleet:
        created = add_configurations(fleet, text, args.batch)
    written = write_batch_configs(out_dir, created.created)
    data = {**created.as_dict(), "written": [str(p) for p in written]}

    def render() -> None:
        table = Table("configuration", "account", "nodes", "client config (0600)")
        for made, paths in zip(created.created, batch_files(out_dir, created.created), strict=True):
            config = made.configuration
            table.add_row(
                config.name, config.account, ",".join(config.nodes), ", ".join(map(str, paths))
            )
        output.out.print(table)
        output.out.print(
            f"{len(created.created)} configuration(s), {len(written)} file(s) written to "
            f"{out_dir}; they are not kept anywhere else",
            markup=False,
        )

    output.result(data, render)
    return push_exit(output, created.push)


def cmd_peers_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """list configurations"""
    enabled = None if args.state == "all" else args.state == "enabled"
    from orchestrator.service import catalog

    with session(settings, args, output) as fleet:
        configs = catalog.configurations(
            fleet, account=args.account, node=args.node, enabled=enabled
        )

    def render() -> None:
        table = Table("configuration", "account", "nodes", "quota", "status")
        for c in configs:
            status = (
                "enabled"
                if c.enabled
                else f"disabled: {c.disabled_reason.value if c.disabled_reason else '?'}"
            )
            table.add_row(
                c.name, c.account, ",".join(c.nodes), c.plan or human_bytes(c.quota_bytes), status
            )
        output.out.print(table)

    output.result([config_dict(c) for c in configs], render)
    return ExitCode.OK


def cmd_peers_show(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """one configuration with its top-ups and usage"""
    from orchestrator.core.quota import shown_period_start
    from orchestrator.service import catalog, peers

    with session(settings, args, output) as fleet:
        detail = catalog.configuration_detail(fleet, args.name)
        lines = peers.client_lines(fleet, detail.configuration)
    config, topups, usage = detail.configuration, detail.topups, detail.usage
    data = {
        **config_dict(config),
        "client_lines": lines,
        "topups": [t.__dict__ for t in topups],
        "usage": [
            {
                "period_start": shown_period_start(u.period_start),
                "rx_bytes": u.rx_bytes,
                "tx_bytes": u.tx_bytes,
            }
            for u in usage
        ],
    }

    def render() -> None:
        table = Table("field", "value", title=config.name)
        for key, value in config_dict(config).items():
            table.add_row(key, str(value))
        table.add_row(
            "top-ups", f"{len(topups)}, {human_bytes(sum(t.bytes_granted for t in topups))}"
        )
        table.add_row("used", human_bytes(sum(u.total for u in usage)))
        output.out.print(table)
        # What a client config made before IPv6 and DNS must carry now (no key needed).
        for node, node_lines in lines.items():
            output.out.print(
                f"# client config lines on {node} ([Interface]: Address, DNS; [Peer]: AllowedIPs)",
                markup=False,
            )
            for line in node_lines:
                output.out.print(line, markup=False)

    output.result(data, render)
    return ExitCode.OK


def _changed(
    output: Output, verb: str, changed: list[Configuration], push: Any, requested: list[str]
) -> int:
    output.result(
        {"requested": requested, "changed": [c.name for c in changed], "push": push.as_dict()},
        lambda: output.out.print(
            f"{verb}: {', '.join(c.name for c in changed) or 'nothing to change'}"
        ),
    )
    return push_exit(output, push)


def cmd_peers_enable(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """enable configurations on every node they are on"""
    from orchestrator.service import peers

    names = node_names(args.names)
    with session(settings, args, output, write=True) as fleet:
        changed, push = peers.set_enabled(fleet, names, True)
    return _changed(output, "enabled", changed, push, names)


def cmd_peers_disable(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """disable configurations on every node"""
    from orchestrator.service import peers

    names = node_names(args.names)
    with session(settings, args, output, write=True) as fleet:
        changed, push = peers.set_enabled(fleet, names, False, DisabledReason(args.reason))
    return _changed(output, "disabled", changed, push, names)


def cmd_peers_remove(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """remove configurations from the store and every node"""
    from orchestrator.service import peers

    names = node_names(args.names)
    confirm(args, f"remove {', '.join(names)} and their usage from the store and every node")
    with session(settings, args, output, write=True) as fleet:
        removed, push = peers.remove_configurations(fleet, names)
    return _changed(output, "removed", removed, push, names)


def register(commands: Any, add: Registrar) -> None:
    peer_commands = command_group(commands, "peers", "configurations (WireGuard peers)")
    peer_add = add(peer_commands, "add", cmd_peers_add)
    peer_add.add_argument("account", nargs="?")
    peer_add.add_argument("--nodes", metavar="NODE[,NODE..]")
    peer_add.add_argument("--all-nodes", action="store_true")
    grant_arguments(peer_add, "--quota")
    peer_add.add_argument("--name", help="configuration name (default ACCOUNT-N)")
    peer_add.add_argument(
        "--split-tunnel",
        metavar="NET[,NET..]",
        help="route only these networks through the tunnel (default: everything, IPv4 and "
        "IPv6, so nothing leaks beside it); kept through key rotations",
    )
    client_config_arguments(peer_add)
    peer_add.add_argument(
        "--from",
        dest="batch",
        metavar="FILE",
        help="many configurations from a YAML or CSV file (account, name, nodes, quota|plan, "
        "split_tunnel per row): all made in one store transaction or none, one push per node",
    )
    peer_add.add_argument(
        "--out-dir",
        metavar="DIR",
        help="with --from: a new or empty directory for the client configs (NAME.conf, or "
        "NAME.NODE.conf on several nodes; 0600)",
    )
    peer_list = add(peer_commands, "list", cmd_peers_list)
    peer_list.add_argument("--account")
    peer_list.add_argument("--node")
    peer_list.add_argument("--state", choices=["all", "enabled", "disabled"], default="all")
    peer_show = add(peer_commands, "show", cmd_peers_show)
    peer_show.add_argument("name")
    enable = add(peer_commands, "enable", cmd_peers_enable)
    enable.add_argument("names", nargs="+", metavar="NAME")
    disable = add(peer_commands, "disable", cmd_peers_disable)
    disable.add_argument("names", nargs="+", metavar="NAME")
    disable.add_argument("--reason", choices=[r.value for r in DisabledReason], default="operator")
    remove = add(peer_commands, "remove", cmd_peers_remove)
    remove.add_argument("names", nargs="+", metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
