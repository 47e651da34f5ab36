"""`wgfleet keys status|rotate`: key ages and rotations (the work is in service.keys)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from orchestrator.cli.client_configs import client_config_destination, emit_client_configs
from orchestrator.cli.common import confirm, node_names, push_exit, session
from orchestrator.cli.output import Output, Registrar, command_group
from orchestrator.cli.secret_output import (
    NotDelivered,
    check_out_file,
    client_config_arguments,
    emit,
    secret_destination,
    secret_out_argument,
    write_files,
)
from orchestrator.core.keys import parse_duration
from orchestrator.errors import ExitCode, UsageError, WgfleetError
from orchestrator.service import catalog
from orchestrator.service.user_files import private_output_dir, write_private_text
from orchestrator.settings import Settings


def _grace(args: argparse.Namespace, settings: Settings) -> int:
    text = args.grace if args.grace is not None else settings.keys.grace
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--grace: {exc}") from None


def cmd_keys_status(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """every key with its age; overdue first"""
    from orchestrator.service.keys import key_status

    with session(settings, args, output) as fleet:
        ages = key_status(fleet)
    if args.overdue:
        ages = [a for a in ages if a.overdue]
    overdue = [a for a in ages if a.overdue]

    def render() -> None:
        table = Table("kind", "subject", "created", "age (days)", "max", "status", "note")
        for age in ages:
            *before, status, note = age.cells()
            table.add_row(*before, f"[red]{status}[/red]" if age.overdue else status, note)
        output.out.print(table)
        output.out.print(f"{len(overdue)} overdue of {len(ages)} keys")

    output.result({"keys": [a.as_dict() for a in ages], "overdue": len(overdue)}, render)
    return ExitCode.FAILED if args.check and overdue else ExitCode.OK


def cmd_rotate_peer(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """new client key pair and preshared key; the old key works through a grace period"""
    from orchestrator.service.keys import rotate_peer

    grace = _grace(args, settings)
    destination = client_config_destination(args, output)
    with session(settings, args, output, write=True) as fleet:
        destination.check(catalog.configuration_nodes(fleet, args.name))
        rotated = rotate_peer(fleet, args.name, grace_seconds=grace)
    config = rotated.configuration
    emit_client_configs(
        args,
        output,
        destination,
        {
            "configuration": config.name,
            "public_key": config.public_key,
            "previous_public_key": config.previous_public_key,
            "grace_seconds": grace,
            "push": rotated.push.as_dict(),
        },
        rotated.client_configs,
        f"configuration {config.name}: new key {config.public_key}; the old key works for "
        f"{args.grace or settings.keys.grace} more, or until the client uses the new one",
        config.name,
    )
    return push_exit(output, rotated.push)


def cmd_rotate_psk(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """new preshared keys for configurations, or for all on a node (clients must update)"""
    from orchestrator.service.keys import rotate_psk

    names = node_names(args.names) if args.names else None
    destination = secret_destination(args.out, output, "the new preshared keys")
    destination.check()
    with session(settings, args, output, write=True) as fleet:
        rotated, pushed = rotate_psk(fleet, names, node=args.node)
    keys = {r.configuration.name: r.preshared_key for r in rotated}
    # Lines a client pastes over its config's own PresharedKey line.
    text = "".join(f"# {name}\nPresharedKey = {key}\n" for name, key in keys.items())
    written = []
    if destination.path is not None:
        write_files(
            destination,
            {"": text},
            made=f"new preshared keys are in force for {', '.join(keys)}",
            reissue=f"wgfleet keys rotate psk {' '.join(keys)} --out FILE",
        )
        written = [str(destination.path)]

    def summary(say: Any) -> None:
        say(
            f"new preshared keys for {', '.join(keys)}: each client must replace its "
            "PresharedKey line before it can connect again"
        )
        if written:
            say(f"written to {written[0]} (0600); wgfleet keeps no copy for the clients")

    def on_terminal() -> None:
        output.out.print("shown once:")
        table = Table("configuration", "PresharedKey")
        for name, key in keys.items():
            table.add_row(name, key)
        output.out.print(table)

    emit(
        output,
        destination,
        {
            "rotated": [{"configuration": name} for name in keys],
            "push": pushed.as_dict(),
            **({"preshared_key_file": written[0]} if written else {}),
        },
        {"rotated": [{"configuration": name, "preshared_key": key} for name, key in keys.items()]},
        text,
        summary,
        on_terminal,
    )
    return push_exit(output, pushed)


def cmd_rotate_node(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """new node key made on the node; --overlap serves old and new side by side"""
    from orchestrator.service.node_keys import rotate_node

    grace = _grace(args, settings) if args.overlap else 0
    if not args.overlap:
        confirm(
            args,
            f"rotate {args.node}'s key now? every client of {args.node} is cut off until it "
            "gets a new config (use --overlap to avoid that)",
        )
    with session(settings, args, output, write=True) as fleet:
        rotated = rotate_node(fleet, args.node, overlap=args.overlap, grace_seconds=grace)
    node = rotated.node
    data = {
        "node": node.name,
        "overlap": rotated.overlap,
        "public_key": node.public_key,
        "next_public_key": node.next_public_key,
        "next_listen_port": node.next_listen_port,
        "grace_seconds": grace,
        "reissue": list(rotated.reissue),
    }

    def render() -> None:
        if rotated.overlap:
            output.out.print(
                f"{node.name}: next key {node.next_public_key} serves on port "
                f"{node.next_listen_port} beside the current key for "
                f"{args.grace or settings.keys.grace}; new client configs name it already"
            )
        else:
            output.out.print(f"{node.name}: new key {node.public_key} in force now")
        output.out.print(
            f"{len(rotated.reissue)} configuration(s) need a new client config "
            f"(`wgfleet keys reissue --node {node.name}`): {', '.join(rotated.reissue) or 'none'}"
        )

    output.result(data, render)
    return ExitCode.OK


def cmd_finish_node(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """end a node key overlap now (the sync does it when the grace ends)"""
    from orchestrator.service.node_keys import finish_node_rotation

    with session(settings, args, output, write=True) as fleet:
        node = finish_node_rotation(fleet, args.node, abort=args.abort)
    data = {"node": node.name, "public_key": node.public_key, "listen_port": node.listen_port}
    output.result(
        data,
        lambda: output.out.print(
            f"{node.name}: key {node.public_key} on port {node.listen_port}"
            + (" (rotation aborted)" if args.abort else " (rotation finished)")
        ),
    )
    return ExitCode.OK


def cmd_reissue(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """new client configs (a peer rotation each), e.g. after a node key rotation

    New client configs for configurations (a peer rotation each), files under --out.
    """
    from orchestrator.service.keys import rotate_peer

    grace = _grace(args, settings)
    out_dir = Path(args.out)
    results: list[dict[str, Any]] = []
    failed = 0
    with session(settings, args, output, write=True) as fleet:
        names = (
            [c.name for c in catalog.configurations(fleet, node=args.node)]
            if args.node
            else node_names(args.names)
        )
        if not names:
            raise UsageError("name configurations or give --node")
        # The directory and every file are checked before the first rotation: DIR is made
        # 0700 if missing, refused if others may write into it (see adapters/private_files).
        files = {
            name: {
                n: out_dir / f"{name}.{n}.conf" for n in catalog.configuration_nodes(fleet, name)
            }
            for name in names
        }
        private_output_dir(out_dir)
        for path in (p for per_node in files.values() for p in per_node.values()):
            check_out_file(path)
        for name in names:
            rotated = rotate_peer(fleet, name, grace_seconds=grace)
            for node, text in rotated.client_configs.items():
                path = files[name].get(node, out_dir / f"{name}.{node}.conf")
                try:
                    write_private_text(path, text)
                except WgfleetError as exc:
                    raise NotDelivered(
                        f"configuration {name} has new keys, but {exc}: run "
                        f"`wgfleet keys reissue {name} --out DIR` for new ones"
                    ) from None
            failed += not rotated.push.ok
            results.append({"configuration": name, "nodes": list(rotated.client_configs)})

    def render() -> None:
        output.out.print(
            f"{len(results)} configuration(s) reissued; client configs written to {out_dir} "
            "(0600, one per configuration and node; wgfleet keeps no copy)"
        )

    output.result({"reissued": results, "out": str(out_dir)}, render)
    return ExitCode.FAILED if failed else ExitCode.OK


def cmd_rotate_ssh(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """a controller SSH key: add the new one, verify it on every node, drop the old one"""
    from orchestrator.service.ssh_keys import rotate_ssh_key

    with session(settings, args, output, write=True) as fleet:
        rotation = rotate_ssh_key(fleet, args.purpose, progress=output.progress)
    summary = (
        f"{rotation.purpose} key rotated on {len(rotation.nodes)} node(s): "
        f"{rotation.as_dict()['old_fingerprint']} -> {rotation.as_dict()['new_fingerprint']}"
    )
    output.result(rotation.as_dict(), lambda: output.out.print(summary, markup=False))
    return ExitCode.OK


def cmd_rotate_fleet_secret(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """reseal every stored preshared key under a new fleet secret, in one transaction"""
    from orchestrator.service.fleet_secret import rotate_fleet_secret

    with session(settings, args, output, write=True) as fleet:
        rotated = rotate_fleet_secret(fleet, args.new_secret)

    def render() -> None:
        output.out.print(
            f"{rotated.resealed} secret(s) resealed: fleet key {rotated.previous_key_id} -> "
            f"{rotated.key_id}",
            markup=False,
        )
        where = "is in" if rotated.installed else "must now replace"
        output.out.print(
            f"the new fleet secret {where} {rotated.secret_file}; copy it to every other "
            "controller (they are refused until they have it)",
            markup=False,
        )

    output.result(rotated.as_dict(), render)
    return ExitCode.OK


def _configurations_or_node(parser: argparse.ArgumentParser) -> None:
    """The configurations a key command acts on: named, or every one placed on --node."""
    parser.add_argument("names", nargs="*", metavar="CONFIGURATION")
    parser.add_argument("--node", help="every configuration placed on this node")


def register(commands: Any, add: Registrar) -> None:
    key_commands = command_group(commands, "keys", "key ages and rotation")
    status = add(key_commands, "status", cmd_keys_status)
    status.add_argument("--overdue", action="store_true", help="list only overdue keys")
    status.add_argument("--check", action="store_true", help="exit 1 when a key is overdue")

    rotate_commands = command_group(key_commands, "rotate", "replace a key", metavar="KIND")
    peer = add(rotate_commands, "peer", cmd_rotate_peer)
    peer.add_argument("name", metavar="CONFIGURATION")
    peer.add_argument("--grace", metavar="DURATION", help="e.g. 30m, 12h, 7d (default: settings)")
    client_config_arguments(peer)
    psk = add(rotate_commands, "psk", cmd_rotate_psk)
    _configurations_or_node(psk)
    secret_out_argument(psk, "write the new PresharedKey lines to FILE (0600); '-' prints them")
    node = add(rotate_commands, "node", cmd_rotate_node)
    node.add_argument("node")
    node.add_argument(
        "--overlap",
        action="store_true",
        help="serve the next key on a second interface and port until the grace ends",
    )
    node.add_argument("--grace", metavar="DURATION", help="overlap length (default: settings)")
    node.add_argument("--yes", action="store_true", help="do not ask before cutting clients off")
    ssh_key = add(rotate_commands, "ssh", cmd_rotate_ssh)
    ssh_key.add_argument("purpose", choices=["deploy", "collector", "push"])
    fleet_secret = add(rotate_commands, "fleet-secret", cmd_rotate_fleet_secret)
    fleet_secret.add_argument(
        "--new-secret",
        type=Path,
        metavar="FILE",
        help="the new secret (one base64 line, 32+ bytes); default: a new one is made",
    )
    finish = add(key_commands, "finish", cmd_finish_node)
    finish.add_argument("node")
    finish.add_argument("--abort", action="store_true", help="drop the next key instead")
    reissue = add(key_commands, "reissue", cmd_reissue)
    _configurations_or_node(reissue)
    reissue.add_argument("--grace", metavar="DURATION", help="old client key grace")
    reissue.add_argument("--out", required=True, metavar="DIR", help="directory for the configs")
