"""`wgfleet accounts add|list|export|delete`: user accounts."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from orchestrator.cli.common import confirm, push_exit, session
from orchestrator.cli.output import Output, Registrar, command_group
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password on: pass --password-stdin")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UsageError("the passwords differ")
    return first


def cmd_accounts_add(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """add an account (password from a prompt or stdin)"""
    from orchestrator.service import peers

    password = _read_password(args)
    with session(settings, args, output, write=True) as fleet:
        account = peers.add_account(fleet, args.username, password, args.device_id, args.contact)
    output.result(
        {"username": account.username, "device_id": account.device_id, "contact": account.contact},
        lambda: output.out.print(f"account {account.username} added"),
    )
    return ExitCode.OK


def cmd_accounts_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """list accounts"""
    from orchestrator.service import catalog

    with session(settings, args, output) as fleet:
        listed = catalog.accounts(fleet, args.search)

    def render() -> None:
        table = Table("username", "device id", "contact", "configurations")
        for row in listed:
            a = row.account
            table.add_row(a.username, a.device_id, a.contact or "-", str(row.configurations))
        output.out.print(table)

    output.result([row.as_dict() for row in listed], render)
    return ExitCode.OK


def cmd_accounts_export(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """everything stored about an account, as JSON (the user's right of access)"""
    from orchestrator.service import peers
    from orchestrator.service.user_files import write_private_text

    with session(settings, args, output) as fleet:
        exported = peers.export_account(fleet, args.username)
    text = json.dumps(exported, indent=2, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return ExitCode.OK
    # The export holds the account's personal data: only its owner may read the file.
    write_private_text(Path(args.output), text, make_parent=True)
    output.result(
        {"username": args.username, "file": args.output},
        lambda: output.out.print(
            f"account {args.username} exported to {args.output} (mode 0600)", markup=False
        ),
    )
    return ExitCode.OK


def cmd_accounts_delete(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """erase an account, its configurations, usage and peers"""
    from orchestrator.service import peers

    confirm(
        args,
        f"erase account {args.username}, its configurations and usage, and remove its peers "
        "from every node (top-up transactions are kept)",
    )
    with session(settings, args, output, write=True) as fleet:
        deletion = peers.delete_account(fleet, args.username)
    output.result(
        {
            "username": args.username,
            "removed_configurations": [c.name for c in deletion.removed],
            "push": deletion.push.as_dict(),
            "store_scrubbed": deletion.scrubbed,
        },
        lambda: output.out.print(
            f"account {args.username} erased with {len(deletion.removed)} configuration(s); "
            "top-up transactions kept"
        ),
    )
    if not deletion.scrubbed:
        sys.stderr.write(
            "wgfleet: the store's files may still hold the erased rows (another process has "
            "the store open): run `wgfleet db scrub` once it is closed\n"
        )
        return ExitCode.FAILED
    return push_exit(output, deletion.push)


def register(commands: Any, add: Registrar) -> None:
    acc = command_group(commands, "accounts", "user accounts")
    acc_add = add(acc, "add", cmd_accounts_add)
    acc_add.add_argument("username")
    acc_add.add_argument(
        "--device-id", required=True, help="the device identifier the provider issues"
    )
    acc_add.add_argument("--contact", help="optional contact number for notifications")
    acc_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    acc_list = add(acc, "list", cmd_accounts_list)
    acc_list.add_argument("--search", help="part of a username")
    acc_export = add(acc, "export", cmd_accounts_export)
    acc_export.add_argument("username")
    acc_export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (mode 0600)")
    acc_del = add(acc, "delete", cmd_accounts_delete)
    acc_del.add_argument("username")
    acc_del.add_argument("--yes", action="store_true", help="do not ask for confirmation")
