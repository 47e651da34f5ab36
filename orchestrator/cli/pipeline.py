"""`wgfleet schema` (and, as they land, `plan`, `apply`, `export`): the fleet file for pipelines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from orchestrator.cli.output import Output, Registrar
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.settings import Settings


def cmd_schema(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.core.fleetfile import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return ExitCode.OK


def cmd_validate(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """Every error of the file at once, one line each: FILE:LINE: FIELD: VALUE: problem."""
    from orchestrator.core.fleetfile import FleetFileInvalid, parse_fleet_file

    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(args.file, "(file)", args.file, exc.strerror or str(exc)) from None
    try:
        fleet = parse_fleet_file(text, args.file)
    except FleetFileInvalid as exc:
        if output.json_mode:
            errors = [e.__dict__ for e in exc.errors]
            sys.stdout.write(json.dumps({"ok": False, "errors": errors}, default=str) + "\n")
        for error in exc.errors:
            sys.stderr.write(f"wgfleet: error: {error}\n")
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


def register(commands: Any, add: Registrar) -> None:
    add(commands, "schema", cmd_schema, "print the fleet file's JSON Schema (for editors and CI)")
    validate = add(
        commands, "validate", cmd_validate, "check a fleet file; every error at once, exit 2"
    )
    validate.add_argument("-f", "--file", required=True, metavar="FILE")
