"""The `wgfleet` command: argument parsing and output only; the work is in orchestrator.service."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator import __version__
from orchestrator.errors import ExitCode, UsageError, WgfleetError
from orchestrator.settings import CONFIG_ENV, Settings, load_settings

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the operation failed on some node or step (each one named on stderr)
  2    bad arguments, settings or input file (nothing was changed)
  3    another wgfleet run holds the fleet lock
  4    this machine lacks something the command needs (root, a tool, /dev/net/tun)
  130  interrupted
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
        if not self.quiet and not self.json_mode:
            self.err.print(f"[dim]{message}[/dim]")

    def result(self, data: Any, render: Callable[[], None]) -> None:
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        elif not self.quiet:
            render()


# --- config -------------------------------------------------------------------------------------


def cmd_config_show(args: argparse.Namespace, settings: Settings, output: Output) -> int:
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


# --- lab ----------------------------------------------------------------------------------------


def _render_lab_status(output: Output, status: Any) -> None:
    if not status.up:
        output.out.print(f"lab {status.lab!r} is down")
        return
    table = Table(title=f"lab {status.lab!r} on {status.subnet} (bridge {status.bridge})")
    for column in ("node", "underlay", "running", "systemd", "host key"):
        table.add_column(column)
    for node in status.nodes:
        table.add_row(
            node.name,
            node.address,
            "yes" if node.running else "[red]no[/red]",
            node.system_state,
            node.host_key_fingerprint or "-",
        )
    output.out.print(table)
    if status.clients:
        clients = Table("client", "underlay", "namespace", "tunnel")
        for client in status.clients:
            clients.add_row(
                client.name,
                client.address,
                "yes" if client.namespace else "[red]missing[/red]",
                f"up (pid {client.tunnel_pid})" if client.tunnel_pid else "down",
            )
        output.out.print(clients)
    for message in status.messages:
        output.out.print(message)
    output.out.print(f"inventory: {status.inventory}\nknown_hosts: {status.known_hosts}")


def cmd_lab_up(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    status = lab.lab_up(settings, args.nodes, args.clients, output.progress)
    output.result(status.as_dict(), lambda: _render_lab_status(output, status))
    return ExitCode.OK if status.healthy else ExitCode.FAILED


def cmd_lab_rootfs(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    path = lab.build_rootfs(settings, output.progress)
    output.result({"rootfs": str(path)}, lambda: output.out.print(f"rootfs ready: {path}"))
    return ExitCode.OK


def cmd_lab_status(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    status = lab.lab_status(settings)
    output.result(status.as_dict(), lambda: _render_lab_status(output, status))
    if not status.up:
        return ExitCode.OK
    return ExitCode.OK if status.healthy else ExitCode.FAILED


def cmd_lab_down(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    removed = lab.lab_down(settings, output.progress)
    output.result(
        {"lab": settings.lab.name, "removed": removed},
        lambda: output.out.print(
            f"lab {settings.lab.name!r} is down"
            + (f" ({len(removed)} objects removed)" if removed else "")
        ),
    )
    return ExitCode.OK


def cmd_lab_stop(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    lab.node_stop(settings, args.node)
    output.result(
        {"node": args.node, "running": False}, lambda: output.out.print(f"{args.node} stopped")
    )
    return ExitCode.OK


def cmd_lab_start(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    lab.node_start(settings, args.node, output.progress)
    output.result(
        {"node": args.node, "running": True}, lambda: output.out.print(f"{args.node} running")
    )
    return ExitCode.OK


def _relay(stdout: str, stderr: str) -> None:
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)


def cmd_lab_exec(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    argv = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
    if not argv:
        raise UsageError("lab exec: give the command to run after the node name")
    result = lab.node_exec(settings, args.node, argv)
    output.result(
        {
            "node": args.node,
            "status": result.status,
            "stdout": result.stdout,
            "stderr": result.stderr,
        },
        lambda: _relay(result.stdout, result.stderr),
    )
    return result.status if 0 <= result.status < 256 else ExitCode.FAILED


def cmd_lab_tunnel_up(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.core.wgquick import WgQuickError
    from orchestrator.errors import ConfigError
    from orchestrator.service import lab

    path = Path(args.config_file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "(file)", str(path), exc.strerror or str(exc)) from None
    try:
        pid = lab.tunnel_up(settings, args.client, text)
    except WgQuickError as exc:
        raise ConfigError(str(path), f"line {exc.line}", "", str(exc)) from None
    output.result(
        {"client": args.client, "tunnel_pid": pid},
        lambda: output.out.print(f"{args.client}: tunnel up (wireguard-go pid {pid})"),
    )
    return ExitCode.OK


def cmd_lab_tunnel_down(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import lab

    lab.tunnel_down(settings, args.client)
    output.result(
        {"client": args.client, "tunnel_pid": None},
        lambda: output.out.print(f"{args.client}: tunnel down"),
    )
    return ExitCode.OK


# --- deploy and audit ---------------------------------------------------------------------------


def _recap_table(recap: Any, title: str) -> Table:
    table = Table(title=title)
    for column in ("host", "status", "ok", "changed", "failed", "unreachable", "task / error"):
        table.add_column(column)
    colours = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red"}
    for name in sorted(recap.hosts):
        host = recap.hosts[name]
        colour = colours.get(host.status, "white")
        table.add_row(
            name,
            f"[{colour}]{host.status}[/{colour}]",
            str(host.ok),
            str(host.changed),
            str(host.failed),
            str(host.unreachable),
            host.error or host.current_task,
        )
    return table


def _run_with_live_view(output: Output, title: str, work: Callable[[Any], Any]) -> Any:
    """Run ``work(on_update)`` showing a live per-host table on a terminal, nothing otherwise."""
    if output.quiet or output.json_mode or not output.err.is_terminal:
        return work(None)
    from rich.live import Live

    from orchestrator.core.playbook_events import PlayRecap

    with Live(_recap_table(PlayRecap(), title), console=output.err, transient=True) as live:

        def on_update(recap: Any, _event: Any) -> None:
            live.update(_recap_table(recap, title))

        return work(on_update)


def cmd_deploy(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import deploy

    mode = " (check mode)" if args.check else ""
    result = _run_with_live_view(
        output,
        f"deploy{mode}",
        lambda on_update: deploy.deploy(
            settings, limit=args.limit, check=args.check, diff=args.check, on_update=on_update
        ),
    )
    output.result(
        result.as_dict(), lambda: output.out.print(_recap_table(result.run.recap, f"deploy{mode}"))
    )
    if not result.ok:
        failed = result.failed_hosts or ["(no host reported)"]
        for name in failed:
            host = result.run.recap.hosts.get(name)
            reason = f"{host.status}: {host.error}" if host else result.run.status
            sys.stderr.write(f"wgfleet: deploy failed on {name}: {reason}\n")
        return ExitCode.FAILED
    return ExitCode.OK


def cmd_audit(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import audit

    result = audit.audit(
        settings, limit=args.limit, needles=args.needle or (), progress=output.progress
    )

    def render() -> None:
        table = Table("node", "check", "result", "evidence", title="audit")
        for check in result.checks:
            verdict = "[green]pass[/green]" if check.passed else "[red]FAIL[/red]"
            table.add_row(check.node, check.check, verdict, check.evidence)
        output.out.print(table)

    output.result(result.as_dict(), render)
    for check in result.failed:
        sys.stderr.write(
            f"wgfleet: audit failed on {check.node}: {check.check}: {check.evidence}\n"
        )
    return ExitCode.OK if result.ok else ExitCode.FAILED


# --- demo ---------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """The main job on the embedded default: a lab fleet, then its status."""
    from orchestrator.service import lab

    status = lab.lab_up(settings, args.nodes, args.clients, output.progress)
    output.result(status.as_dict(), lambda: _render_lab_status(output, status))
    return ExitCode.OK if status.healthy else ExitCode.FAILED


# --- parser -------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


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

    def add(
        group: Any, name: str, handler: Handler, help_text: str, **kwargs: Any
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
            **kwargs,
        )
        sub.set_defaults(handler=handler)
        return sub

    demo = add(
        commands,
        "demo",
        cmd_demo,
        "the main job on the embedded default: build the lab fleet and show it",
    )
    demo.add_argument("--nodes", type=_positive, default=3, help="lab nodes (default 3)")
    demo.add_argument("--clients", type=_positive, default=2, help="lab VPN clients (default 2)")

    deploy = add(
        commands, "deploy", cmd_deploy, "deploy hardened, no-log WireGuard nodes with Ansible"
    )
    deploy.add_argument("--limit", metavar="PATTERN", help="only these hosts (Ansible pattern)")
    deploy.add_argument(
        "--check", action="store_true", help="change nothing; report what would change, with diffs"
    )

    audit = add(commands, "audit", cmd_audit, "check every node against the no-log promise")
    audit.add_argument("--limit", metavar="NODES", help="comma-separated node names")
    audit.add_argument(
        "--needle",
        action="append",
        metavar="TEXT",
        help="also fail if TEXT is on a node's disk (e.g. a client's address); repeatable",
    )

    config = commands.add_parser("config", help="inspect the settings in force")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    add(config_commands, "show", cmd_config_show, "show the effective settings (paths, never keys)")

    lab = commands.add_parser(
        "lab",
        help="a real fleet of Debian nodes and VPN clients on this machine",
        description="Build, inspect and tear down a lab fleet: systemd-nspawn nodes in their own "
        "network namespaces on a bridge in 198.18.0.0/15, and client namespaces.",
    )
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = add(lab_commands, "up", cmd_lab_up, "build and boot the lab fleet (idempotent)")
    up.add_argument("--nodes", type=_positive, default=3, help="number of nodes (default 3)")
    up.add_argument(
        "--clients", type=_positive, default=2, help="number of client namespaces (default 2)"
    )
    add(lab_commands, "rootfs", cmd_lab_rootfs, "build the cached node root filesystem (once)")
    add(lab_commands, "status", cmd_lab_status, "show the lab's nodes and clients")
    add(
        lab_commands,
        "down",
        cmd_lab_down,
        "remove every namespace, mount, bridge and process of the lab",
    )
    stop = add(lab_commands, "stop", cmd_lab_stop, "power one node off (its disk stays)")
    stop.add_argument("node")
    start = add(lab_commands, "start", cmd_lab_start, "boot a stopped node again")
    start.add_argument("node")
    execute = add(lab_commands, "exec", cmd_lab_exec, "run a command on a node over pinned SSH")
    execute.add_argument("node")
    execute.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    tunnel = lab_commands.add_parser("tunnel", help="a lab client's WireGuard tunnel")
    tunnel_commands = tunnel.add_subparsers(dest="tunnel_command", metavar="ACTION", required=True)
    tunnel_on = add(
        tunnel_commands, "up", cmd_lab_tunnel_up, "bring a client's tunnel up from a wg-quick file"
    )
    tunnel_on.add_argument("client")
    tunnel_on.add_argument("config_file", metavar="CONFIG_FILE")
    tunnel_off = add(tunnel_commands, "down", cmd_lab_tunnel_down, "take a client's tunnel down")
    tunnel_off.add_argument("client")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    output = Output(args.json, args.quiet, args.verbose)
    try:
        settings = load_settings(args.config)
        return int(args.handler(args, settings, output))
    except WgfleetError as exc:
        sys.stderr.write(f"wgfleet: error: {exc}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        output.err.print("wgfleet: interrupted", markup=False)
        return int(ExitCode.INTERRUPTED)
