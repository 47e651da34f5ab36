"""Output of the `wgfleet` command: results on stdout (table or JSON), progress on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console

from orchestrator.core.input_limits import MAX_BYTES
from orchestrator.core.quoting import quote, sanitize
from orchestrator.settings import Settings

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the operation failed on some node or step (each one named on stderr)
  2    bad arguments, settings or input file (nothing was changed)
  3    another wgfleet run holds the fleet lock
  4    this machine lacks something the command needs (root, a tool, /dev/net/tun),
       or cannot use the PostgreSQL store (down, wrong password, no such database)
  130  interrupted
  141  the output pipe closed early (e.g. `| head`); nothing more was printed
"""

Handler = Callable[[argparse.Namespace, Settings, "Output"], int]


class Output:
    """Where results (stdout) and progress (stderr) go, honouring --json, --quiet and -v."""

    def __init__(self, json_mode: bool, quiet: bool, verbose: bool) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False)

    def progress(self, message: str) -> None:
        """What is happening now (a node done, a step started): stderr, with -v only, so a
        successful run without -v keeps stderr empty for cron and pipelines."""
        if self.verbose and not self.quiet:
            self.err.print(f"[dim]{message}[/dim]", markup=True, highlight=False)

    def detail(self, message: str) -> None:
        """A step the command took (the session's trail): stderr, with -v only."""
        if self.verbose and not self.quiet:
            self.err.print(message, markup=False, highlight=False)

    def result(self, data: Any, render: Callable[[], object]) -> None:
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        elif not self.quiet:
            render()


Registrar = Callable[..., argparse.ArgumentParser]


def command_group(commands: Any, name: str, help: str, *, metavar: str = "ACTION") -> Any:
    """``wgfleet NAME ACTION``: the subcommands of a group, one of them required. The chosen
    one lands in ``NAME_command``, where the dispatcher looks for it (cli.common)."""
    group = commands.add_parser(name, help=help)
    return group.add_subparsers(dest=f"{name}_command", metavar=metavar, required=True)


def positive_int(text: str) -> int:
    """A whole number 0..2^63-1 written in ASCII digits (int() alone would take "١٢",
    "1_000" or " 12 ", and numbers no store column holds)."""
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise argparse.ArgumentTypeError(f"{quote(text)} is negative")
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_BYTES:
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a whole number 0..{MAX_BYTES}")
    return int(text)


def byte_amount(text: str) -> int:
    """A byte amount as fleet files write it: ``10GiB``, ``500MB`` or a number of bytes (the
    same units everywhere, core.units)."""
    from orchestrator.core.units import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{quote(text)}: {exc}") from None


SIZE_HELP = "e.g. 10GiB, 500MB or a number of bytes"


def grant_arguments(parser: argparse.ArgumentParser, size_flag: str) -> None:
    """Quota given either as a size (``size_flag`` SIZE) or as a plan's (--plan), not both."""
    grant = parser.add_mutually_exclusive_group()
    grant.add_argument(size_flag, type=byte_amount, metavar="SIZE", help=SIZE_HELP)
    grant.add_argument("--plan")


def fail_lines(prefix: str, failures: list[tuple[str, str]]) -> None:
    """One stderr line per failed node: `wgfleet: PREFIX NODE: REASON`."""
    for node, reason in failures:
        # A reason may carry a node's own words (a push refusal): one escaped line.
        sys.stderr.write(f"wgfleet: {prefix} {sanitize(node, 200)}: {sanitize(reason)}\n")
