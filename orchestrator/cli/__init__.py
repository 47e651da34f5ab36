"""The `wgfleet` command: argument parsing and output only; the work is in orchestrator.service."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rich.table import Table

from orchestrator import __version__
from orchestrator.cli import (
    accounts,
    alerts,
    billing,
    controllers,
    db,
    diagnose,
    keys,
    lab,
    nodes,
    peers,
    pipeline,
    plans,
    privacy,
    push,
    serve,
    sync,
    tokens,
    trail,
)
from orchestrator.cli.output import EXIT_CODES_HELP, Handler, Output, command_group, positive_int
from orchestrator.cli.redacted import redacted_traceback, settings_secrets
from orchestrator.core.quoting import sanitize
from orchestrator.core.redaction import redact_text, redact_url
from orchestrator.errors import ExitCode, WgfleetError
from orchestrator.settings import CONFIG_ENV, Settings, load_settings

# --- config -------------------------------------------------------------------------------------


def cmd_config_show(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """show the effective settings (paths, never keys)"""
    data = settings.describe()

    def render() -> None:
        table = Table("setting", "value", title=f"settings from {settings.source}")
        for key, value in data.items():
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    table.add_row(f"{key}.{sub}", str(subvalue))
            else:
                table.add_row(key, str(value))
        output.out.print(table)

    output.result(data, render)
    return ExitCode.OK


# --- tui ----------------------------------------------------------------------------------------


def cmd_tui(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """the operator's terminal UI (same actions as these commands)"""
    from orchestrator.tui.app import run

    run(settings)
    return ExitCode.OK


# --- demo ---------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """the main job on the embedded default: a deployed lab fleet with real usage

    The main job on the embedded default: a deployed lab fleet with real usage in the store.
    """
    from orchestrator.service.demo import run_demo

    # The demo runs for minutes: its steps are its story, told on stdout as they happen (stderr
    # stays for errors, as for every command).
    def narrate(step: str) -> None:
        if not output.json_mode and not output.quiet:
            output.out.print(f"[dim]{step}[/dim]")

    result = run_demo(settings, args.nodes, args.clients, narrate)

    def render() -> None:
        lab.render_lab_status(output, result.lab)
        output.out.print(nodes.recap_table(result.deploy.run.recap, "deploy"))
        table = Table(
            "configuration", "used (bytes)", "allowance (bytes)", title="usage in the store"
        )
        for name, (used, allowance) in sorted(result.usage.items()):
            table.add_row(name, str(used), "unmetered" if allowance is None else str(allowance))
        output.out.print(table)
        output.out.print(
            f"store: {redact_url(settings.store_url)}\nnext: `wgfleet peers list`, "
            "`wgfleet sync -v`, `wgfleet audit`, `wgfleet lab down`"
        )

    output.result(
        {
            "lab": result.lab.as_dict(),
            "deploy": result.deploy.as_dict(),
            "sync": result.sync.as_dict(),
            "usage": {k: {"used": u, "allowance": a} for k, (u, a) in result.usage.items()},
        },
        render,
    )
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if result.ok and args.tui and interactive and not output.json_mode and not output.quiet:
        from orchestrator.tui.app import run

        run(settings)  # the same fleet, now with real usage in it
    return ExitCode.OK if result.ok else ExitCode.FAILED


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """Options valid before or after the command; SUPPRESS stops a subcommand resetting them."""
    common = argparse.ArgumentParser(add_help=False)
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    common.add_argument(
        "--config",
        metavar="FILE",
        help=f"settings file (YAML); default: ${CONFIG_ENV}, else built-in defaults",
        **default,
    )
    flags = (
        ("--json", "print machine-readable JSON on stdout"),
        ("-q", "--quiet", "print nothing on success"),
        ("-v", "--verbose", "say more about progress"),
    )
    for *names, help_text in flags:
        common.add_argument(*names, action="store_true", help=help_text, **default)
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _global_options(suppress=True)

    parser = argparse.ArgumentParser(
        prog="wgfleet",
        description="Run a fleet of no-logs WireGuard VPN nodes.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"wgfleet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(group: Any, name: str, handler: Handler, **kwargs: Any) -> argparse.ArgumentParser:
        # A command's help line is its handler's docstring: one text, beside the code it
        # describes, shown by `wgfleet COMMAND --help` and in the command list.
        help_text = " ".join((inspect.getdoc(handler) or "").split("\n\n", 1)[0].split())
        sub: argparse.ArgumentParser = group.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
            **kwargs,
        )
        # "keys rotate ssh": what the preflight table below is keyed by.
        sub.set_defaults(handler=handler, command_path=sub.prog.split(" ", 1)[-1])
        return sub

    demo = add(commands, "demo", cmd_demo)
    demo.add_argument("--nodes", type=positive_int, default=3, help="lab nodes (default 3)")
    demo.add_argument("--clients", type=positive_int, default=2, help="lab VPN clients (default 2)")
    demo.add_argument(
        "--no-tui",
        dest="tui",
        action="store_false",
        help="end with the summary; by default a terminal opens the operator's TUI on the fleet",
    )

    config_commands = command_group(commands, "config", "inspect the settings in force")
    add(config_commands, "show", cmd_config_show)
    add(commands, "tui", cmd_tui)
    nodes.register(commands, add)
    for group in (
        db,
        accounts,
        plans,
        peers,
        billing,
        push,
        trail,
        alerts,
        tokens,
        controllers,
        serve,
    ):
        group.register(commands, add)
    sync.register_sync(commands, add)
    nodes.register_node_group(commands, add)
    keys.register(commands, add)
    pipeline.register(commands, add)
    lab.register(commands, add)
    privacy.register(commands, add)
    diagnose.register(commands, add)
    return parser


Check = Callable[[Settings, argparse.Namespace], None]


def _needs_inventory(settings: Settings, args: argparse.Namespace) -> None:
    from orchestrator.service import preflight

    preflight.inventory(settings)


def _needs_ssh_key(settings: Settings, args: argparse.Namespace) -> None:
    from orchestrator.service import preflight

    preflight.inventory(settings)
    preflight.controller_key(settings, args.purpose)


# What a command reads before it may create anything (the store, the lock, keys); the settings'
# paths are checked for every command but these two, which touch none of them.
PREFLIGHT: dict[str, tuple[Check, ...]] = {
    "deploy": (_needs_inventory,),
    "audit": (_needs_inventory,),
    "diagnose": (_needs_inventory,),
    "nodes trust": (_needs_inventory,),
    "keys rotate ssh": (_needs_ssh_key,),
    "controllers revoke": (_needs_inventory,),
}
NO_PATHS = ("schema", "config show")


def _preflight(settings: Settings, args: argparse.Namespace) -> None:
    from orchestrator.service import preflight

    path = getattr(args, "command_path", "")
    if path in NO_PATHS:
        return
    if path == "demo" or path.startswith("lab "):
        preflight.lab_machine()
    preflight.check_settings(settings)
    for check in PREFLIGHT.get(path, ()):
        check(settings, args)


def _error_line(text: str) -> str:
    """One line, whatever a message holds (its values are quoted where they are made; this
    is the last guard for text that was not)."""
    return f"wgfleet: error: {sanitize(text)}\n"


def _closed_pipe() -> int:
    """stdout's reader went away (`wgfleet --json peers list | head -1`): stop quietly.

    Python would print a BrokenPipeError traceback, and another one when it flushes stdout at
    exit; pointing stdout at /dev/null avoids the second. The exit code is a shell's for a
    process ended by SIGPIPE (128 + 13), so `set -o pipefail` still sees the output was cut.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return int(ExitCode.PIPE_CLOSED)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    output = Output(args.json, args.quiet, args.verbose)
    secrets: frozenset[str] = frozenset()  # of the settings: never on stderr, even in a bug
    try:
        settings = load_settings(args.config)
        secrets = settings_secrets(settings)
        _preflight(settings, args)
        code = int(args.handler(args, settings, output))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except WgfleetError as exc:
        with contextlib.suppress(BrokenPipeError):
            sys.stderr.write(_error_line(redact_text(str(exc), secrets)))
        return int(exc.exit_code)
    except Exception:
        if not secrets:
            raise
        sys.stderr.write(redacted_traceback(secrets))
        return int(ExitCode.FAILED)
    except KeyboardInterrupt:
        output.err.print("wgfleet: interrupted", markup=False)
        return int(ExitCode.INTERRUPTED)
