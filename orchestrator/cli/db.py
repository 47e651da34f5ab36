"""`wgfleet db upgrade|scrub`: the quota store's schema and files."""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.cli.common import session
from orchestrator.cli.output import Output, Registrar, command_group
from orchestrator.core.redaction import redact_url
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """apply pending schema migrations to the store"""
    from orchestrator.service.context import upgrade_store

    applied, version = upgrade_store(settings)
    output.result(
        {"store": redact_url(settings.store_url), "applied": applied, "version": version},
        lambda: output.out.print(
            f"store at schema version {version}"
            + (f" (applied {', '.join(map(str, applied))})" if applied else " (already current)")
        ),
    )
    return ExitCode.OK


def cmd_db_scrub(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """make erased rows unrecoverable from the store's files (WAL checkpoint or VACUUM)"""
    from orchestrator.service import catalog

    with session(settings, args, output, write=True) as fleet:
        done = catalog.scrub_store(fleet)
    output.result(
        {"store": redact_url(settings.store_url), "scrubbed": done},
        lambda: output.out.print(
            "erased rows are gone from the store's files"
            if done
            else "another process holds an old snapshot of the store: try again once it ends"
        ),
    )
    return ExitCode.OK if done else ExitCode.FAILED


def register(commands: Any, add: Registrar) -> None:
    db_commands = command_group(commands, "db", "the quota store's schema and files")
    add(db_commands, "upgrade", cmd_db_upgrade)
    add(db_commands, "scrub", cmd_db_scrub)
