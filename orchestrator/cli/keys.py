"""`wgfleet keys status|rotate`: key ages and rotations (the work is in service.keys)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from orchestrator.cli.fleet import _fleet, _names, _push_exit, _qr, _write_secret_file
from orchestrator.cli.output import Output, Registrar
from orchestrator.core.keys import parse_duration
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings


def _grace(args: argparse.Namespace, settings: Settings) -> int:
    text = args.grace if args.grace is not None else settings.keys.grace
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--grace: {exc}") from None


def cmd_keys_status(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service.keys import key_status

    with _fleet(settings, write=False) as fleet:
        ages = key_status(fleet)
    if args.overdue:
        ages = [a for a in ages if a.overdue]
    overdue = [a for a in ages if a.overdue]

    def render() -> None:
        table = Table("kind", "subject", "created", "age (days)", "max", "status", "note")
        for age in ages:
            record = age.record
            status = "[red]overdue[/red]" if age.overdue else f"due in {age.due_in_days} d"
            table.add_row(
                str(record.kind),
                record.subject,
                str(record.created_on or "unknown"),
                "-" if age.age_days is None else str(age.age_days),
                str(age.max_age_days),
                status,
                record.note,
            )
        output.out.print(table)
        output.out.print(f"{len(overdue)} overdue of {len(ages)} keys")

    output.result({"keys": [a.as_dict() for a in ages], "overdue": len(overdue)}, render)
    return ExitCode.FAILED if args.check and overdue else ExitCode.OK


def _show_client_configs(args: argparse.Namespace, configs: dict[str, str]) -> dict[str, Any]:
    """Write or print client configs once; return what --json shows of them."""
    if args.out:
        for node, text in configs.items():
            target = Path(args.out) if len(configs) == 1 else Path(f"{args.out}.{node}.conf")
            _write_secret_file(target, text)
        return {}
    return {"client_configs": configs}


def cmd_rotate_peer(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service.keys import rotate_peer

    grace = _grace(args, settings)
    with _fleet(settings) as fleet:
        rotated = rotate_peer(fleet, args.name, grace_seconds=grace)
    config = rotated.configuration
    data: dict[str, Any] = {
        "configuration": config.name,
        "public_key": config.public_key,
        "previous_public_key": config.previous_public_key,
        "grace_seconds": grace,
        "push": rotated.push.as_dict(),
    }
    data.update(_show_client_configs(args, rotated.client_configs))

    def render() -> None:
        output.out.print(
            f"configuration {config.name}: new key {config.public_key}; the old key works for "
            f"{args.grace or settings.keys.grace} more, or until the client uses the new one"
        )
        if args.out:
            output.out.print(f"new client configuration written to {args.out} (0600)")
            return
        output.out.print(
            "new client configuration, shown once (wgfleet keeps no copy of its private key):"
        )
        for node, text in rotated.client_configs.items():
            output.out.print(f"\n# {node}\n{text}", markup=False)
            if args.qr:
                output.out.print(_qr(text), markup=False)

    output.result(data, render)
    return _push_exit(output, rotated.push)


def cmd_rotate_psk(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service.keys import rotate_psk

    names = _names(args.names) if args.names else None
    with _fleet(settings) as fleet:
        rotated, pushed = rotate_psk(fleet, names, node=args.node)
    data = {
        "rotated": [
            {"configuration": r.configuration.name, "preshared_key": r.preshared_key}
            for r in rotated
        ],
        "push": pushed.as_dict(),
    }

    def render() -> None:
        output.out.print(
            "new preshared keys, shown once: each client must replace its PresharedKey line "
            "before it can connect again"
        )
        table = Table("configuration", "PresharedKey")
        for r in rotated:
            table.add_row(r.configuration.name, r.preshared_key)
        output.out.print(table)

    output.result(data, render)
    return _push_exit(output, pushed)


def register(commands: Any, add: Registrar) -> None:
    keys = commands.add_parser("keys", help="key ages and rotation")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    status = add(key_commands, "status", cmd_keys_status, "every key with its age; overdue first")
    status.add_argument("--overdue", action="store_true", help="list only overdue keys")
    status.add_argument("--check", action="store_true", help="exit 1 when a key is overdue")

    rotate = key_commands.add_parser("rotate", help="replace a key")
    rotate_commands = rotate.add_subparsers(dest="rotate_command", metavar="KIND", required=True)
    peer = add(
        rotate_commands,
        "peer",
        cmd_rotate_peer,
        "new client key pair and preshared key; the old key works through a grace period",
    )
    peer.add_argument("name", metavar="CONFIGURATION")
    peer.add_argument("--grace", metavar="DURATION", help="e.g. 30m, 12h, 7d (default: settings)")
    peer.add_argument("--qr", action="store_true", help="also show each config as a QR code")
    peer.add_argument("--out", metavar="FILE", help="write the client config to FILE (0600)")
    psk = add(
        rotate_commands,
        "psk",
        cmd_rotate_psk,
        "new preshared keys for configurations, or for all on a node (clients must update)",
    )
    psk.add_argument("names", nargs="*", metavar="CONFIGURATION")
    psk.add_argument("--node", help="every configuration placed on this node")
