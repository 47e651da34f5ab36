"""What several command groups share: the session a command runs in, confirmation, name lists,
shards, push exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from orchestrator.cli.output import Output, fail_lines
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.core.shard import Shard
    from orchestrator.service.context import Fleet


def push_exit(output: Output, push: Any) -> int:
    """Exit 1 naming each node that did not take the change; it stays pending for `apply`."""
    fail_lines(
        "push failed on",
        [(n.node, f"{n.error} (kept pending: run `wgfleet apply`)") for n in push.failed],
    )
    return ExitCode.OK if push.ok else ExitCode.FAILED


def confirm(args: argparse.Namespace, question: str) -> None:
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: no terminal to ask on; pass --yes to confirm")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("not confirmed; nothing changed")


def node_names(values: list[str]) -> list[str]:
    return [n for value in values for n in value.split(",") if n]


def shard_argument(args: argparse.Namespace) -> Any:
    from orchestrator.core.shard import parse_shard

    text = getattr(args, "shard", None)
    if not text:
        return None
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise UsageError(f"--shard: {exc}") from None


def command_name(args: argparse.Namespace) -> str:
    """The command as typed, without its arguments: "peers add", "sync", "keys rotate"."""
    words = [str(args.command)]
    nested = getattr(args, f"{args.command}_command", None)
    if nested:
        words.append(str(nested))
    return " ".join(words)


@contextmanager
def session(
    settings: Settings,
    args: argparse.Namespace,
    output: Output,
    *,
    write: bool = False,
    wait: bool = True,
    timeout: float | None = 300.0,
    shard: Shard | None = None,
    store_only: bool = False,
) -> Iterator[Fleet]:
    """The command's session on the fleet (service.context.open_fleet): writers queue behind
    the fleet lock for up to 5 minutes (cron, the TUI, pipelines), store-only writers (top-ups)
    take no lock; with -v, what it did."""
    from orchestrator.service.context import open_fleet

    with open_fleet(
        settings,
        write=write,
        wait=wait,
        timeout=timeout,
        shard=shard,
        operation=command_name(args),
        store_only=store_only,
    ) as fleet:
        yield fleet
    for step in fleet.trail:
        output.detail(step)
