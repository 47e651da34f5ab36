"""Where a command may put the secrets it makes (client private keys, preshared keys).

A secret goes to exactly one of:

- an ``--out FILE``: written 0600 without following links (adapters/private_files), never
  over a link, a non-regular file or another user's file, never into a directory other users
  may write into (unless it is sticky, like /tmp); stdout and ``--json`` then carry no secret;
- stdout because the caller asked for it with ``--out -`` (``--json`` then carries it too;
  plain output is then the secret text alone, the summary going to stderr);
- the terminal: stdout is a terminal, without ``--json`` or ``--quiet``.

Anything else (a pipe or a file on stdout, ``--json`` or ``--quiet`` without ``--out``) is
refused with exit 2 *before* the command changes anything, so no configuration is made whose
keys nobody received. The destination and every file it names are checked first, in
:func:`secret_destination` and :meth:`SecretDestination.check`.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cli.output import Output
from orchestrator.errors import ExitCode, UsageError, WgfleetError
from orchestrator.service.user_files import check_private_target, write_private_text

STDOUT = "-"


@dataclass(frozen=True)
class SecretDestination:
    """Where this run's secrets go: ``path`` (a file), or stdout (asked for, or a terminal)."""

    path: Path | None
    asked_for_stdout: bool = False

    @property
    def to_file(self) -> bool:
        return self.path is not None

    def files(self, names: Iterable[str]) -> dict[str, Path]:
        """One file per name (a client config per node): ``FILE`` itself for one name,
        ``FILE.NAME.conf`` for several."""
        assert self.path is not None
        chosen = sorted(set(names))
        if len(chosen) == 1:
            return {chosen[0]: self.path}
        return {name: Path(f"{self.path}.{name}.conf") for name in chosen}

    def check(self, names: Iterable[str] = ("",)) -> None:
        """Refuse now (exit 2, nothing changed) a file that could not be written safely."""
        if self.path is None:
            return
        for path in self.files(names).values():
            check_out_file(path)


def check_out_file(path: Path) -> None:
    """A file the operator named for a secret: its directory exists and no other user may
    replace files in it (sticky directories excepted), and the file itself may be replaced
    (see private_files.check_target)."""
    directory = path.parent
    try:
        found = os.stat(directory)
    except OSError as exc:
        raise UsageError(f"{path}: its directory {directory}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(found.st_mode):
        raise UsageError(f"{path}: {directory} is not a directory")
    if found.st_mode & 0o022 and not found.st_mode & stat.S_ISVTX:
        raise UsageError(
            f"{path}: other users may replace files in {directory} "
            f"(mode {stat.S_IMODE(found.st_mode):04o}); choose a private directory"
        )
    check_private_target(path)


def secret_destination(out: str | None, output: Output, what: str) -> SecretDestination:
    """Where ``what`` (e.g. "the client configuration") may go, or a UsageError saying how
    to ask for it; called before the command changes anything."""
    if out == STDOUT:
        return SecretDestination(None, asked_for_stdout=True)
    if out:
        return SecretDestination(Path(out))
    hint = "pass --out FILE (written 0600) or --out - to print it on stdout anyway"
    if output.json_mode:
        raise UsageError(f"--json carries {what} only when asked (it is secret): {hint}")
    if output.quiet:
        raise UsageError(f"--quiet would not show {what}, and wgfleet keeps no copy: {hint}")
    if not sys.stdout.isatty():
        raise UsageError(
            f"stdout is not a terminal, and {what} is secret and kept nowhere else: {hint}"
        )
    return SecretDestination(None)


class NotDelivered(WgfleetError):
    """The change was made but its secrets could not be written (the file was checked first,
    so only a race or a full disk gets here): exit 1, saying how to issue new ones."""

    exit_code = ExitCode.FAILED


def write_files(
    destination: SecretDestination, texts: Mapping[str, str], *, made: str, reissue: str
) -> list[Path]:
    """Write each text to its file (0600, see private_files); return the files written.
    ``made`` says what exists now, ``reissue`` the command that issues its secrets anew."""
    written = []
    for name, path in destination.files(texts).items():
        try:
            write_private_text(path, texts[name])
        except WgfleetError as exc:
            raise NotDelivered(f"{made}, but {exc}: run `{reissue}` for new keys") from None
        written.append(path)
    return written


def emit(
    output: Output,
    destination: SecretDestination,
    data: dict[str, Any],
    secret_data: dict[str, Any],
    secret_text: str,
    summary: Callable[[Callable[[str], None]], None],
    show_on_terminal: Callable[[], None],
) -> None:
    """Print a command's result with its secrets where ``destination`` allows them.

    ``data`` is the JSON without secrets, ``secret_data`` what JSON adds when stdout was
    asked for; ``secret_text`` is the plain form for ``--out -``; ``summary(say)`` tells what
    was done; ``show_on_terminal`` shows the secrets on a terminal.
    """
    if output.json_mode:
        output.result({**data, **(secret_data if destination.asked_for_stdout else {})}, str)
        return
    if destination.asked_for_stdout:
        # stdout holds the secret text alone (a pipeline saves it as is); what was done goes
        # to stderr with -v only (a successful run keeps stderr empty).
        summary(output.detail)
        sys.stdout.write(secret_text)
        sys.stdout.flush()
        return

    def render() -> None:
        summary(lambda line: output.out.print(line, markup=False))
        if destination.to_file:
            return
        show_on_terminal()

    output.result(data, render)


def client_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--qr and --out for a command that makes client configs (their private keys inside)."""
    parser.add_argument(
        "--qr", action="store_true", help="also show each client config as a QR code"
    )
    secret_out_argument(
        parser,
        "write the client config to FILE (0600; FILE.NODE.conf for several nodes); '-' prints it",
    )


def secret_out_argument(parser: argparse.ArgumentParser, where: str) -> None:
    """--out FILE|-: ``where`` says what goes to FILE and ends with how '-' prints it."""
    parser.add_argument(
        "--out",
        metavar="FILE",
        help=f"{where} on stdout (needed when stdout is not a terminal, and for --json)",
    )
