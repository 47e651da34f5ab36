"""`wgfleet sync` and `wgfleet usage check|list`: counters in, quotas enforced."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from rich.markup import escape
from rich.table import Table

from orchestrator.cli.common import node_names, session, shard_argument
from orchestrator.cli.output import Output, Registrar, command_group, fail_lines, positive_int
from orchestrator.core.units import human_bytes
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings


def _render_sync(output: Output, data: dict[str, Any]) -> None:
    output.out.print(
        f"synced {len(data['nodes_ok'])} node(s), {data['configurations_updated']} "
        f"configuration(s) updated, {data['bytes_added']} bytes added"
    )
    if data["nodes_skipped"]:
        output.out.print(f"leased by another run: {', '.join(data['nodes_skipped'])}")
    for key in ("newly_over_quota", "newly_expired", "re_enabled", "warned"):
        if data[key]:
            output.out.print(f"{key.replace('_', ' ')}: {', '.join(data[key])}")
    for node, count in data["removals_pending"].items():
        output.out.print(f"{node}: {count} key removal(s) not confirmed yet", markup=False)
    # The notes (a node key rotation finished, a notification kept) are in the session's
    # trail, which -v prints on stderr with everything else the run did.


def cmd_sync(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """pull counters, account usage, enforce quotas (cron-ready)"""
    from orchestrator.service import sync as sync_service

    shard = shard_argument(args)
    if args.every:
        if args.nodes:
            raise UsageError("--every syncs the whole fleet (or --shard): drop --nodes")
        return _sync_every(args, settings, output, shard)
    if args.metrics is not None:
        raise UsageError("--metrics serves a running loop: give --every too")
    with session(
        settings, args, output, write=True, wait=args.wait, timeout=None, shard=shard
    ) as fleet:
        result = sync_service.sync(
            fleet,
            nodes=node_names(args.nodes) if args.nodes else None,
            warn_ratio=(args.warn_at or fleet.settings.usage.warn_percent) / 100,
            progress=(lambda n: output.progress(f"{n.node}: {'ok' if n.ok else n.error}"))
            if args.verbose
            else None,
            shard=shard,
        )

    def render() -> None:
        # Cron mode: silent on success unless -v; problems always reach stderr below.
        if args.verbose:
            _render_sync(output, result.as_dict())

    output.result(result.as_dict(), render)
    fail_lines("sync failed on", [(n.node, n.error) for n in result.failed])
    return ExitCode.OK if result.ok else ExitCode.FAILED


def _sync_every(args: argparse.Namespace, settings: Settings, output: Output, shard: Any) -> int:
    """Run until SIGTERM or SIGINT; one JSON line per run with --json."""
    import signal
    import threading

    from orchestrator.core.keys import parse_duration
    from orchestrator.core.metrics import NO_OBSERVER, RunObserver, parse_metrics_listen
    from orchestrator.service.sync_loop import LoopRun, sync_every

    try:
        interval = parse_duration(args.every)
    except ValueError as exc:
        raise UsageError(f"--every: {exc}") from None
    if interval < 1:
        raise UsageError("--every: give an interval of at least 1s")
    if args.metrics is not None:
        try:
            parse_metrics_listen(args.metrics)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def report(run: LoopRun) -> None:
        if run.result is None:
            sys.stderr.write(f"wgfleet: sync run {run.number} did not run: {run.error}\n")
            return
        data = {**run.result.as_dict(), "run": run.number, "seconds": round(run.seconds, 3)}
        data["sessions_open"] = run.sessions
        if output.json_mode:
            sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
            sys.stdout.flush()
        elif args.verbose:
            _render_sync(output, data)
        fail_lines("sync failed on", [(n.node, n.error) for n in run.result.failed])

    def loop(observer: RunObserver = NO_OBSERVER) -> None:
        sync_every(
            settings,
            interval,
            report,
            stop=stop,
            runs=args.runs,
            shard=shard,
            warn_percent=args.warn_at,
            observer=observer,
        )

    if args.metrics is None:
        loop()
        return ExitCode.OK
    from orchestrator.service.metrics import FleetMetrics, serving

    metrics = FleetMetrics(settings)
    with serving(metrics, args.metrics) as (host, port):
        shown = f"[{host}]" if ":" in host else host
        output.progress(escape(f"metrics on http://{shown}:{port}/metrics"))
        loop(metrics)
    return ExitCode.OK


def cmd_usage_check(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """recompute totals from top-ups and usage; exit 1 on mismatch"""
    from orchestrator.service import catalog
    from orchestrator.service.usage import usage_check

    with session(settings, args, output) as fleet:
        mismatches = usage_check(fleet)
        count = catalog.granted_configurations(fleet)
    output.result(
        {"checked": count, "mismatches": [m.__dict__ for m in mismatches]},
        lambda: output.out.print(
            f"{count} configuration(s) and the store's used total checked, "
            f"{len(mismatches)} mismatch(es)"
        ),
    )
    for m in mismatches:
        sys.stderr.write(
            f"wgfleet: usage mismatch for {m.subject}: {m.kind} bytes kept {m.stored}, "
            f"recomputed from top-ups and usage {m.recomputed}"
            + (f" ({m.note})" if m.note else "")
            + "\n"
        )
    return ExitCode.FAILED if mismatches else ExitCode.OK


def cmd_usage_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    """used and remaining quota per configuration"""
    from orchestrator.core.quota import shown_period_start
    from orchestrator.service.usage import quota_statuses

    with session(settings, args, output) as fleet:
        statuses = quota_statuses(fleet, date.today())
    rows: list[dict[str, Any]] = [
        {
            "configuration": s.configuration,
            "period_start": shown_period_start(s.period_start),
            "allowance": s.allowance,
            "used": s.used,
            "remaining": s.remaining,
            "over": s.over,
        }
        for s in statuses.values()
    ]

    def render() -> None:
        table = Table("configuration", "period from", "used", "allowance", "remaining")
        for r in rows:
            table.add_row(
                r["configuration"],
                str(r["period_start"] or "never resets"),
                human_bytes(r["used"]),
                human_bytes(r["allowance"]) if r["allowance"] is not None else "unmetered",
                human_bytes(r["remaining"]),
            )
        output.out.print(table)

    output.result(rows, render)
    return ExitCode.OK


def register_sync(commands: Any, add: Registrar) -> None:
    sync = add(commands, "sync", cmd_sync)
    sync.add_argument(
        "--wait", action="store_true", help="wait for a running sync instead of exiting 3"
    )
    sync.add_argument("--nodes", action="append", metavar="NODE[,NODE..]")
    sync.add_argument(
        "--shard",
        metavar="I/N",
        help="sync only shard I of N (by a hash of the node name), so N controllers or cron "
        "jobs share one PostgreSQL store; node leases keep two runs off one node",
    )
    sync.add_argument(
        "--every",
        metavar="DURATION",
        help="keep running, one sync every DURATION (60s, 5m), keeping SSH sessions open "
        "between runs; stops on SIGTERM/SIGINT; --json prints one line per run",
    )
    sync.add_argument(
        "--metrics",
        metavar="ADDR:PORT",
        help="with --every: serve Prometheus metrics on http://ADDR:PORT/metrics while it runs "
        "(127.0.0.1:9100, [::1]:9100; no access log; docs/METRICS.md)",
    )
    sync.add_argument("--runs", type=positive_int, default=None, help=argparse.SUPPRESS)
    sync.add_argument(
        "--warn-at",
        type=positive_int,
        default=None,
        metavar="PERCENT",
        help="report configurations at this share of their quota (default: usage.warn_percent, 80)",
    )
    usage_commands = command_group(commands, "usage", "usage totals")
    add(usage_commands, "check", cmd_usage_check)
    add(usage_commands, "list", cmd_usage_list)
