"""`wgfleet serve`: the provider's HTTP API (orchestrator.server) under uvicorn."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from orchestrator.cli.output import Output, Registrar
from orchestrator.core.listen import DEFAULT_LISTEN
from orchestrator.errors import ExitCode
from orchestrator.settings import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """the provider's HTTP API (tokens with scopes; no access log, no client address)"""
    from orchestrator.core.listen import parse_listen
    from orchestrator.server.run import Listener, serve
    from orchestrator.service.context import open_fleet
    from orchestrator.service.errors import translated

    with translated():
        host, port = parse_listen(args.listen)
    # The store is opened (and brought to the current schema) once before serving, so a
    # store that cannot be used fails here, with its one line and exit code.
    with open_fleet(settings):
        pass
    if not output.quiet:
        scheme = "https" if args.tls_cert else "http"
        shown = f"[{host}]" if ":" in host else host
        # stdout: stderr stays for errors, as for every command.
        sys.stdout.write(f"wgfleet serve: {scheme}://{shown}:{port}/v1 (Ctrl-C stops)\n")
        sys.stdout.flush()
    serve(settings, Listener(host, port, args.tls_cert, args.tls_key))
    return ExitCode.OK


def register(commands: Any, add: Registrar) -> None:
    serve = add(commands, "serve", cmd_serve)
    serve.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="ADDR:PORT",
        help=f"address and port to listen on (default {DEFAULT_LISTEN}; IPv6 as [::1]:8787)",
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    serve.add_argument("--tls-key", metavar="FILE", help="... and this private key")
