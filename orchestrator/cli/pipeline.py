"""The fleet file for pipelines and the schedule for cron: `schema`, `validate`, `plan`,
`apply -f`, `export` and `cron print`."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from orchestrator.cli.output import Output, Registrar, command_group, fail_lines
from orchestrator.core.fleetplan import render_plan
from orchestrator.errors import ExitCode, UsageError, WgfleetError
from orchestrator.settings import Settings


def cmd_schema(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """print the fleet file's JSON Schema (for editors and CI)"""
    from orchestrator.core.fleetfile import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return ExitCode.OK


def cmd_validate(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """check a fleet file; every error at once, exit 2

    Every error of the file at once, one line each: FILE:LINE: FIELD: VALUE: problem.
    """
    from orchestrator.core.fleetfile import FleetFileInvalid
    from orchestrator.service.fleet_file import read_fleet_file

    try:
        fleet, _digest = read_fleet_file(args.file)
    except FleetFileInvalid as exc:
        _report_invalid(exc, output)
        return ExitCode.USAGE
    summary = {
        "ok": True,
        "nodes": len(fleet.nodes),
        "plans": len(fleet.plans),
        "accounts": len(fleet.accounts),
        "configurations": len(fleet.configurations),
    }
    output.result(summary, lambda: output.out.print(f"{args.file}: valid ({summary})"))
    return ExitCode.OK


PLAN_EXIT_HELP = """\
exit codes (like `terraform plan -detailed-exitcode`):
  0    no changes
  1    error: an invalid file, a change the store would refuse, an unreachable store
  2    changes pending
(plan only reads: it never waits for or takes the fleet lock)
"""


def cmd_plan(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """show what applying a fleet file would change; exit 0 none, 2 pending, 1 error

    Exit 0 no changes, 2 changes pending, 1 on any error (so 2 never means a bad file).
    """
    from orchestrator.core.fleetfile import FleetFileInvalid
    from orchestrator.service import fleet_file
    from orchestrator.service.context import open_fleet

    try:
        # The file first: an invalid one creates no store.
        file, digest = fleet_file.read_fleet_file(args.file)
        with open_fleet(settings) as fleet:
            plan = fleet_file.plan_read(fleet, file, digest)
    except FleetFileInvalid as exc:
        _report_invalid(exc, output)
        return ExitCode.FAILED
    except WgfleetError as exc:
        sys.stderr.write(f"wgfleet: error: {exc}\n")
        return ExitCode.FAILED
    if args.out:
        try:
            _write_private(args.out, json.dumps(plan.as_dict(), indent=2, sort_keys=True) + "\n")
        except WgfleetError as exc:  # exit 2 would read as "changes pending"
            sys.stderr.write(f"wgfleet: error: {exc}\n")
            return ExitCode.FAILED
    output.result(plan.as_dict(), lambda: sys.stdout.write(plan.render()))
    for problem in plan.problems:
        sys.stderr.write(f"wgfleet: error: {problem}\n")
    if plan.problems:
        return ExitCode.FAILED
    return PLAN_CHANGES if plan.pending else ExitCode.OK


PLAN_CHANGES = 2


def cmd_apply_file(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.core.fleetfile import FleetFileInvalid
    from orchestrator.service import fleet_file
    from orchestrator.service.context import open_fleet

    if args.dry_run:
        raise UsageError("apply -f --dry-run: run `wgfleet plan -f FILE` to see the changes")
    saved = fleet_file.load_saved_plan(args.plan_file) if args.plan_file else None
    path = args.file or (saved or {}).get("file")
    if not path:
        raise UsageError("apply: give the fleet file with -f FILE (or a saved --plan-file)")
    try:
        fleet_file.read_fleet_file(path)  # refused before the lock (and the store) exist
        with open_fleet(settings, write=True, operation="apply") as fleet:
            if saved is None and not args.yes:
                # Approve what you see: the plan shown is the plan applied, or apply refuses.
                shown = fleet_file.plan(fleet, path)
                if not shown.pending and not shown.problems:
                    output.result(
                        {"ok": True, "applied": []}, lambda: output.out.print("no changes")
                    )
                    return ExitCode.OK
                if not sys.stdin.isatty():
                    raise UsageError(
                        "apply: no terminal to ask on; pass --yes, or apply a saved --plan-file"
                    )
                sys.stdout.write(shown.render())
                answer = input(f"apply {len(shown.pending)} change(s)? [y/N] ").strip().lower()
                if answer not in ("y", "yes"):
                    raise UsageError("not confirmed; nothing changed")
                saved = shown.as_dict()
            result = fleet_file.apply(
                fleet,
                path,
                saved=saved,
                progress=output.progress,
            )
    except FleetFileInvalid as exc:
        _report_invalid(exc, output)
        return ExitCode.USAGE

    def render() -> None:
        if not result.applied:
            output.out.print("no changes")
            return
        sys.stdout.write(render_plan(list(result.applied)).replace(" change(s)", " applied"))
        if result.deploy is not None:
            state = (
                "ok" if result.deploy.ok else "FAILED on " + ", ".join(result.deploy.failed_hosts)
            )
            output.out.print(f"deploy: {state}")
        if result.push is not None:
            failed = [n.node for n in result.push.failed]
            output.out.print("push: " + ("ok" if not failed else "FAILED on " + ", ".join(failed)))

    output.result(result.as_dict(), render)
    if result.deploy is not None and not result.deploy.ok:
        sys.stderr.write(
            f"wgfleet: error: deploy failed on {', '.join(result.deploy.failed_hosts) or 'a host'};"
            " nothing else was changed\n"
        )
    if result.push is not None:
        fail_lines(
            "push failed on",
            [
                (n.node, f"{n.error} (kept pending: run `wgfleet apply`)")
                for n in result.push.failed
            ],
        )
    return ExitCode.OK if result.ok else ExitCode.FAILED


def cmd_export(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """write the store as a fleet file (customers left out)"""
    from orchestrator.service import fleet_file
    from orchestrator.service.context import open_fleet

    with open_fleet(settings) as fleet:
        text = fleet_file.export(fleet)
    if args.out:
        _write_private(args.out, text)
        output.progress(f"wrote {args.out}")
    elif output.json_mode:
        output.result(yaml.safe_load(text), lambda: None)
    else:
        sys.stdout.write(text)
    return ExitCode.OK


def cmd_cron_print(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """print a crontab or systemd timers that run `sync` and `audit` (overlap-safe)"""
    from orchestrator.core.listen import parse_listen
    from orchestrator.core.schedule import crontab, serve_unit, systemd_units
    from orchestrator.service.context import open_fleet
    from orchestrator.service.errors import translated

    with open_fleet(settings) as fleet:
        interval = fleet.settings.usage.sync_interval  # a fleet file's policy, if applied
    command = _wgfleet_command(settings)
    if args.serve:
        if args.format != "systemd":
            raise UsageError("--serve: the API is a long-running service; use --format systemd")
        with translated():
            host, port = parse_listen(args.serve, "--serve")
        args.serve = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if args.format == "crontab":
        text = crontab(command, interval)
        output.result({"crontab": text}, lambda: sys.stdout.write(text))
        return ExitCode.OK
    units = systemd_units(command, interval)
    if args.serve:
        units["wgfleet-serve.service"] = serve_unit(command, args.serve)
    if args.dir:
        target = Path(args.dir)
        target.mkdir(parents=True, exist_ok=True)
        for name, body in units.items():
            (target / name).write_text(body, encoding="utf-8")
        output.progress(f"wrote {', '.join(sorted(units))} to {target}")
    output.result(
        units,
        lambda: sys.stdout.write(
            "".join(f"# --- {name}\n{body}\n" for name, body in sorted(units.items()))
        ),
    )
    return ExitCode.OK


def _wgfleet_command(settings: Settings) -> str:
    """This very wgfleet, with the settings file it ran with, as a scheduler should call it."""
    executable = shutil.which("wgfleet") or str(Path(sys.argv[0]).resolve())
    config = "" if settings.source == "defaults" else f" --config {shlex.quote(settings.source)}"
    return f"{shlex.quote(executable)}{config}"


def _write_private(path: str, text: str) -> None:
    """Plans and exports name keys and accounts: readable by their owner only."""
    from orchestrator.service.user_files import write_private_text

    write_private_text(Path(path), text, make_parent=True)


def _report_invalid(exc: Any, output: Output) -> None:
    if output.json_mode:
        errors = [e.__dict__ for e in exc.errors]
        sys.stdout.write(json.dumps({"ok": False, "errors": errors}, default=str) + "\n")
    for error in exc.errors:
        sys.stderr.write(f"wgfleet: error: {error}\n")


def register(commands: Any, add: Registrar) -> None:
    add(commands, "schema", cmd_schema)
    validate = add(commands, "validate", cmd_validate)
    validate.add_argument("-f", "--file", required=True, metavar="FILE")
    plan = add(commands, "plan", cmd_plan)
    plan.epilog = PLAN_EXIT_HELP
    plan.add_argument("-f", "--file", required=True, metavar="FILE", help="the fleet file")
    plan.add_argument(
        "--out", metavar="PLAN", help="save the plan (JSON, 0600) for `apply --plan-file`"
    )
    export = add(commands, "export", cmd_export)
    export.add_argument("-o", "--out", metavar="FILE", help="write to FILE (0600), not stdout")
    cron_commands = command_group(commands, "cron", "schedules for unattended runs")
    cron_print = add(cron_commands, "print", cmd_cron_print)
    cron_print.add_argument("--format", choices=["crontab", "systemd"], default="crontab")
    cron_print.add_argument(
        "--dir", metavar="DIR", help="with --format systemd: also write the unit files to DIR"
    )
    cron_print.add_argument(
        "--serve",
        metavar="ADDR:PORT",
        help="with --format systemd: add wgfleet-serve.service, the HTTP API on ADDR:PORT",
    )
