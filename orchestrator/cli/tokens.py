"""`wgfleet tokens add|list|revoke`: the HTTP API's tokens (`wgfleet serve`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.table import Table

from orchestrator.cli.common import session
from orchestrator.cli.output import Output, Registrar, command_group
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def cmd_tokens_add(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """make a token and print it once (only its hash is kept)"""
    from orchestrator.service.tokens import add_token

    with session(settings, args, output, write=True) as fleet:
        made = add_token(fleet, args.name, args.scope, args.expires)

    def render() -> None:
        # The token alone on stdout, once: `wgfleet tokens add billing ... > token` keeps it.
        sys.stdout.write(made.text + "\n")

    output.result(made.as_dict(), render)
    return ExitCode.OK


def cmd_tokens_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """list tokens (never their secrets)"""
    from orchestrator.service.tokens import list_tokens

    with session(settings, args, output) as fleet:
        found = list_tokens(fleet)

    def render() -> None:
        table = Table("name", "id", "scopes", "made", "last valid day", "state")
        for t in found:
            table.add_row(
                t.name,
                t.token_id,
                ",".join(sorted(t.scopes)),
                t.created_on.isoformat(),
                t.expires_on.isoformat() if t.expires_on else "until revoked",
                "revoked" if t.revoked else "active",
            )
        output.out.print(table)

    output.result([t.as_dict() for t in found], render)
    return ExitCode.OK


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """refuse a token from now on"""
    from orchestrator.service.tokens import revoke_token

    with session(settings, args, output, write=True) as fleet:
        token = revoke_token(fleet, args.name)
    output.result(token.as_dict(), lambda: output.out.print(f"token {token.name} revoked"))
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    tokens = command_group(commands, "tokens", "the HTTP API's tokens (wgfleet serve)")
    made = add(tokens, "add", cmd_tokens_add)
    made.add_argument("name", help="what the token is for, e.g. billing-backend")
    made.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="SCOPE",
        help="billing, provision, read or metrics (repeat, or comma-separate)",
    )
    made.add_argument(
        "--expires",
        metavar="DAYS|DATE",
        help="valid for DAYS days from today, or until DATE (YYYY-MM-DD); default: until revoked",
    )
    add(tokens, "list", cmd_tokens_list)
    revoke = add(tokens, "revoke", cmd_tokens_revoke)
    revoke.add_argument("name")
