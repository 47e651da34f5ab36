"""`wgfleet db|accounts|plans|peers|topup|apply|nodes`: the store and the push."""

from __future__ import annotations

import argparse
import getpass
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from rich.table import Table

from orchestrator.adapters.input_files import read_text
from orchestrator.cli.output import Output, Registrar, fail_lines, positive_int
from orchestrator.cli.secret_output import (
    SecretDestination,
    emit,
    secret_destination,
    write_files,
)
from orchestrator.core.input_limits import TOPUP_BATCH_MAX_BYTES
from orchestrator.core.models import Configuration, DisabledReason, Plan, ResetRule
from orchestrator.core.redaction import redact_url
from orchestrator.errors import ExitCode, UsageError
from orchestrator.settings import Settings


@contextmanager
def _fleet(settings: Settings, *, write: bool = True) -> Iterator[Any]:
    """The store for one command; writers queue behind the fleet lock (cron, TUI, pipelines)."""
    from orchestrator.service.context import open_fleet
    from orchestrator.service.lock import fleet_lock

    if not write:
        with open_fleet(settings) as fleet:
            yield fleet
        return
    with fleet_lock(settings, wait=True, timeout=300), open_fleet(settings) as fleet:
        yield fleet


def _push_exit(output: Output, push: Any) -> int:
    """Exit 1 naming each node that did not take the change; it stays pending for `apply`."""
    fail_lines(
        "push failed on",
        [(n.node, f"{n.error} (kept pending: run `wgfleet apply`)") for n in push.failed],
    )
    return ExitCode.OK if push.ok else ExitCode.FAILED


def _confirm(args: argparse.Namespace, question: str) -> None:
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: no terminal to ask on; pass --yes to confirm")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UsageError("not confirmed; nothing changed")


def _names(values: list[str]) -> list[str]:
    return [n for value in values for n in value.split(",") if n]


def _gib(n: int | None) -> str:
    """Bytes for people: exact below 1 KiB, two decimals above."""
    if n is None:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


# --- db -----------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.adapters.store import open_store

    store = open_store(settings.store_url, source=settings.source)
    try:
        applied = store.upgrade(ipv6_prefix=settings.network.ipv6_prefix)
        version = store.schema_version()
    finally:
        store.close()
    output.result(
        {"store": redact_url(settings.store_url), "applied": applied, "version": version},
        lambda: output.out.print(
            f"store at schema version {version}"
            + (f" (applied {', '.join(map(str, applied))})" if applied else " (already current)")
        ),
    )
    return ExitCode.OK


# --- accounts -----------------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password on: pass --password-stdin")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise UsageError("the passwords differ")
    return first


def cmd_accounts_add(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    password = _read_password(args)
    with _fleet(settings) as fleet:
        account = peers.add_account(fleet, args.username, password, args.device_id, args.contact)
    output.result(
        {"username": account.username, "device_id": account.device_id, "contact": account.contact},
        lambda: output.out.print(f"account {account.username} added"),
    )
    return ExitCode.OK


def cmd_accounts_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    with _fleet(settings, write=False) as fleet:
        accounts = fleet.store.accounts(args.search)
        counts = {a.username: len(fleet.store.configurations(account=a.username)) for a in accounts}

    def render() -> None:
        table = Table("username", "device id", "contact", "configurations")
        for a in accounts:
            table.add_row(a.username, a.device_id, a.contact or "-", str(counts[a.username]))
        output.out.print(table)

    output.result(
        [
            {
                "username": a.username,
                "device_id": a.device_id,
                "contact": a.contact,
                "configurations": counts[a.username],
            }
            for a in accounts
        ],
        render,
    )
    return ExitCode.OK


def cmd_accounts_export(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    import json

    from orchestrator.adapters import keyfiles
    from orchestrator.service import peers

    with _fleet(settings, write=False) as fleet:
        exported = peers.export_account(fleet, args.username)
    text = json.dumps(exported, indent=2, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return ExitCode.OK
    # The export holds the account's personal data: only its owner may read the file.
    keyfiles.write_private(Path(args.output), text.encode(), make_parent=True)
    sys.stderr.write(f"wgfleet: account {args.username} exported to {args.output} (mode 0600)\n")
    return ExitCode.OK


def cmd_accounts_delete(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    _confirm(
        args,
        f"erase account {args.username}, its configurations and usage, and remove its peers "
        "from every node (top-up transactions are kept)",
    )
    with _fleet(settings) as fleet:
        deletion = peers.delete_account(fleet, args.username)
    output.result(
        {
            "username": args.username,
            "removed_configurations": [c.name for c in deletion.removed],
            "push": deletion.push.as_dict(),
            "store_scrubbed": deletion.scrubbed,
        },
        lambda: output.out.print(
            f"account {args.username} erased with {len(deletion.removed)} configuration(s); "
            "top-up transactions kept"
        ),
    )
    if not deletion.scrubbed:
        sys.stderr.write(
            "wgfleet: the store's files may still hold the erased rows (another process has "
            "the store open): run `wgfleet db scrub` once it is closed\n"
        )
        return ExitCode.FAILED
    return _push_exit(output, deletion.push)


# --- plans --------------------------------------------------------------------------------------


def cmd_plans_set(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.core.peers import NAME_RE
    from orchestrator.core.quoting import quote
    from orchestrator.core.topup_batch import AMOUNT_RE

    if not NAME_RE.fullmatch(args.name):
        raise UsageError(f"plan {quote(args.name)}: use lowercase letters, digits, '.', '_' or '-'")
    if args.price is not None and not AMOUNT_RE.fullmatch(args.price):
        raise UsageError(f"--price {quote(args.price)}: a decimal amount such as 4.99")
    if not 1 <= args.anchor_day <= 28:
        raise UsageError(f"--anchor-day {args.anchor_day}: must be 1..28")
    valid_until = None
    if args.valid_until is not None:
        try:
            valid_until = date.fromisoformat(args.valid_until)
        except ValueError:
            raise UsageError(
                f"--valid-until {quote(args.valid_until)}: a date as YYYY-MM-DD"
            ) from None
    plan = Plan(
        args.name,
        args.quota,
        ResetRule(args.reset),
        args.anchor_day,
        args.price,
        args.validity_days,
        valid_until,
    )
    with _fleet(settings) as fleet:
        fleet.store.upsert_plan(plan)
    output.result(plan.__dict__, lambda: output.out.print(f"plan {plan.name} saved"))
    return ExitCode.OK


def cmd_plans_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    with _fleet(settings, write=False) as fleet:
        plans = fleet.store.plans()

    def render() -> None:
        table = Table("plan", "quota", "reset", "anchor day", "price", "validity")
        for p in plans:
            validity = " / ".join(
                part
                for part in (
                    f"{p.validity_days} days" if p.validity_days else "",
                    f"until {p.valid_until}" if p.valid_until else "",
                )
                if part
            )
            table.add_row(
                p.name,
                _gib(p.quota_bytes),
                p.reset.value,
                str(p.anchor_day),
                p.price or "-",
                validity or "-",
            )
        output.out.print(table)

    output.result([p.__dict__ for p in plans], render)
    return ExitCode.OK


# --- peers --------------------------------------------------------------------------------------


def _config_dict(c: Configuration) -> dict[str, Any]:
    return {
        "name": c.name,
        "account": c.account,
        "public_key": c.public_key,
        "addresses": {n: str(a) for n, a in c.addresses.items()},
        "plan": c.plan,
        "quota_bytes": c.quota_bytes,
        "enabled": c.enabled,
        "disabled_reason": c.disabled_reason.value if c.disabled_reason else None,
        "key_created_on": c.key_created_on,
        "valid_until": c.valid_until,
        "split_tunnel": c.split_tunnel,
    }


def _qr(text: str) -> str:
    import segno

    buffer = io.StringIO()
    segno.make(text, error="l").terminal(out=buffer, compact=True)
    return buffer.getvalue()


def client_config_destination(args: argparse.Namespace, output: Output) -> SecretDestination:
    """Where the client configuration may go (see cli/secret_output); exit 2 before any
    change when it could go nowhere safe."""
    return secret_destination(args.out, output, "the client configuration")


def emit_client_configs(
    args: argparse.Namespace,
    output: Output,
    destination: SecretDestination,
    data: dict[str, Any],
    configs: dict[str, str],
    headline: str,
    name: str,
) -> None:
    """Deliver configuration ``name``'s client configs (node -> wg-quick text) once, where
    ``destination`` says: files (one per node when several), stdout when asked (``--out -``),
    or the terminal."""
    written = []
    if destination.to_file:
        made = write_files(
            destination,
            configs,
            made=f"configuration {name} has new keys",
            reissue=f"wgfleet keys rotate peer {name} --out FILE",
        )
        written = [str(p) for p in made]

    def summary(say: Any) -> None:
        say(headline)
        if written:
            say(
                f"client configuration written to {', '.join(written)} (0600); "
                "it is not kept anywhere else"
            )

    def on_terminal() -> None:
        output.out.print(
            "client configuration, shown once (wgfleet keeps no copy of its private key):"
        )
        for node, text in configs.items():
            output.out.print(f"\n# {node}\n{text}", markup=False)
            if args.qr:
                output.out.print(_qr(text), markup=False)

    emit(
        output,
        destination,
        {**data, **({"client_config_files": written} if written else {})},
        {"client_configs": configs},
        "".join(f"# {node}\n{text}" for node, text in configs.items()),
        summary,
        on_terminal,
    )


def cmd_peers_add(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    if bool(args.nodes) == args.all_nodes:
        raise UsageError("give exactly one of --nodes NODE[,NODE..] or --all-nodes")
    destination = client_config_destination(args, output)
    with _fleet(settings) as fleet:
        chosen = sorted(fleet.nodes()) if args.all_nodes else _names([args.nodes])
        destination.check(chosen)
        created = peers.add_configuration(
            fleet,
            args.account,
            nodes=None if args.all_nodes else chosen,
            quota_bytes=args.quota,
            plan=args.plan,
            name=args.name,
            split_tunnel=args.split_tunnel,
        )
    config = created.configuration
    emit_client_configs(
        args,
        output,
        destination,
        {**_config_dict(config), "push": created.push.as_dict()},
        created.client_configs,
        f"configuration {config.name} for {config.account} on {', '.join(config.nodes)}",
        config.name,
    )
    return _push_exit(output, created.push)


def cmd_peers_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    enabled = None if args.state == "all" else args.state == "enabled"
    with _fleet(settings, write=False) as fleet:
        configs = fleet.store.configurations(account=args.account, node=args.node, enabled=enabled)

    def render() -> None:
        table = Table("configuration", "account", "nodes", "quota", "status")
        for c in configs:
            status = (
                "enabled"
                if c.enabled
                else f"disabled: {c.disabled_reason.value if c.disabled_reason else '?'}"
            )
            table.add_row(
                c.name, c.account, ",".join(c.nodes), c.plan or _gib(c.quota_bytes), status
            )
        output.out.print(table)

    output.result([_config_dict(c) for c in configs], render)
    return ExitCode.OK


def cmd_peers_show(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    with _fleet(settings, write=False) as fleet:
        config = fleet.store.configuration(args.name)
        topups = fleet.store.topups(args.name)
        usage = fleet.store.usage(args.name)
        lines = peers.client_lines(fleet, config)
    data = {
        **_config_dict(config),
        "client_lines": lines,
        "topups": [t.__dict__ for t in topups],
        "usage": [
            {"period_start": u.period_start, "rx_bytes": u.rx_bytes, "tx_bytes": u.tx_bytes}
            for u in usage
        ],
    }

    def render() -> None:
        table = Table("field", "value", title=config.name)
        for key, value in _config_dict(config).items():
            table.add_row(key, str(value))
        table.add_row("top-ups", f"{len(topups)}, {_gib(sum(t.bytes_granted for t in topups))}")
        table.add_row("used", _gib(sum(u.total for u in usage)))
        output.out.print(table)
        # What a client config made before IPv6 and DNS must carry now (no key needed).
        for node, node_lines in lines.items():
            output.out.print(
                f"# client config lines on {node} ([Interface]: Address, DNS; [Peer]: AllowedIPs)",
                markup=False,
            )
            for line in node_lines:
                output.out.print(line, markup=False)

    output.result(data, render)
    return ExitCode.OK


def _changed(
    output: Output, verb: str, changed: list[Configuration], push: Any, requested: list[str]
) -> int:
    output.result(
        {"requested": requested, "changed": [c.name for c in changed], "push": push.as_dict()},
        lambda: output.out.print(
            f"{verb}: {', '.join(c.name for c in changed) or 'nothing to change'}"
        ),
    )
    return _push_exit(output, push)


def cmd_peers_enable(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    names = _names(args.names)
    with _fleet(settings) as fleet:
        changed, push = peers.set_enabled(fleet, names, True)
    return _changed(output, "enabled", changed, push, names)


def cmd_peers_disable(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    names = _names(args.names)
    with _fleet(settings) as fleet:
        changed, push = peers.set_enabled(fleet, names, False, DisabledReason(args.reason))
    return _changed(output, "disabled", changed, push, names)


def cmd_peers_remove(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    names = _names(args.names)
    _confirm(args, f"remove {', '.join(names)} and their usage from the store and every node")
    with _fleet(settings) as fleet:
        removed, push = peers.remove_configurations(fleet, names)
    return _changed(output, "removed", removed, push, names)


# --- top-ups ------------------------------------------------------------------------------------


def cmd_topup(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import peers

    if args.batch is not None:
        return _topup_batch(args, settings, output)
    if args.configuration is None or args.invoice is None or args.amount is None:
        raise UsageError("give CONFIGURATION --amount A --invoice INV (--bytes N | --plan P)")
    with _fleet(settings) as fleet:
        topup, created = peers.topup(
            fleet,
            args.configuration,
            invoice=args.invoice,
            amount=args.amount,
            bytes_granted=args.bytes,
            plan=args.plan,
        )
    output.result(
        {**topup.__dict__, "created": created},
        lambda: output.out.print(
            f"invoice {topup.invoice}: granted {topup.bytes_granted} bytes to {topup.configuration}"
            if created
            else f"invoice {topup.invoice} was already recorded ({topup.bytes_granted} bytes to "
            f"{topup.configuration}); nothing granted again"
        ),
    )
    return ExitCode.OK


def _topup_batch(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service.billing import topup_batch

    if args.configuration or args.invoice or args.amount or args.bytes or args.plan:
        raise UsageError("--from takes everything from the file: give no other top-up options")
    text = read_text(args.batch, TOPUP_BATCH_MAX_BYTES, "a top-up batch")
    with _fleet(settings) as fleet:
        outcomes = topup_batch(fleet, text, args.batch)

    def render() -> None:
        table = Table("line", "invoice", "configuration", "bytes", "result")
        for o in outcomes:
            table.add_row(
                str(o.line),
                o.invoice,
                o.configuration,
                str(o.bytes_granted),
                "granted" if o.created else "already recorded",
            )
        output.out.print(table)

    output.result([o.as_dict() for o in outcomes], render)
    return ExitCode.OK


# --- apply and nodes ----------------------------------------------------------------------------


def cmd_apply(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import push as push_service

    if getattr(args, "file", None) or getattr(args, "plan_file", None):
        from orchestrator.cli.pipeline import cmd_apply_file

        if getattr(args, "shard", None):
            raise UsageError("--shard pushes the store's state; a fleet file applies whole")

        return cmd_apply_file(args, settings, output)

    from orchestrator.service.lock import fleet_lock

    shard = _shard(args)
    with (
        fleet_lock(settings, wait=True, timeout=300, shard=shard),
        _fleet(settings, write=False) as fleet,
    ):
        result = push_service.push(
            fleet,
            _names(args.nodes) if args.nodes else None,
            shard=shard,
            dry_run=args.dry_run,
            progress=lambda n: output.progress(
                f"{n.node}: {'ok' if n.ok else 'FAILED ' + n.error}"
            ),
        )

    def render() -> None:
        title = "plan (nothing was changed)" if result.dry_run else "apply"
        table = Table("node", "result", "add", "change", "remove", "unchanged", title=title)
        for n in result.nodes:
            verdict = "[green]ok[/green]" if n.ok else f"[red]{n.error}[/red]"
            row = n.as_dict()
            table.add_row(
                n.node,
                verdict,
                str(row["added"]),
                str(row["changed"]),
                str(row["removed"]),
                str(row["unchanged"]),
            )
        output.out.print(table)

    output.result(result.as_dict(), render)
    return _push_exit(output, result)


def cmd_nodes_list(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    with _fleet(settings, write=False) as fleet:
        nodes = fleet.store.nodes()
        revisions = fleet.store.node_revisions()
        counts = {n.name: len(fleet.store.configurations(node=n.name)) for n in nodes}
    rows = [
        {
            "name": n.name,
            "address": n.address,
            "tunnel_network": str(n.tunnel_network),
            "public_key": n.public_key,
            "key_created_on": n.key_created_on,
            "configurations": counts[n.name],
            "pending": revisions[n.name][0] != revisions[n.name][1],
        }
        for n in nodes
    ]

    def render() -> None:
        table = Table(
            "node", "address", "tunnel pool", "configurations", "pending push", "key since"
        )
        for r in rows:
            table.add_row(
                r["name"],
                r["address"],
                r["tunnel_network"],
                str(r["configurations"]),
                "yes" if r["pending"] else "no",
                str(r["key_created_on"] or "-"),
            )
        output.out.print(table)

    output.result(rows, render)
    return ExitCode.OK


def cmd_db_scrub(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    with _fleet(settings) as fleet:
        done = fleet.store.scrub()
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
    db = commands.add_parser("db", help="the quota store's schema and files")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    add(db_commands, "upgrade", cmd_db_upgrade, "apply pending schema migrations to the store")
    add(
        db_commands,
        "scrub",
        cmd_db_scrub,
        "make erased rows unrecoverable from the store's files (WAL checkpoint or VACUUM)",
    )

    accounts = commands.add_parser("accounts", help="user accounts")
    acc = accounts.add_subparsers(dest="accounts_command", metavar="ACTION", required=True)
    acc_add = add(acc, "add", cmd_accounts_add, "add an account (password from a prompt or stdin)")
    acc_add.add_argument("username")
    acc_add.add_argument(
        "--device-id", required=True, help="the device identifier the provider issues"
    )
    acc_add.add_argument("--contact", help="optional contact number for notifications")
    acc_add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    acc_list = add(acc, "list", cmd_accounts_list, "list accounts")
    acc_list.add_argument("--search", help="part of a username")
    acc_export = add(
        acc,
        "export",
        cmd_accounts_export,
        "everything stored about an account, as JSON (the user's right of access)",
    )
    acc_export.add_argument("username")
    acc_export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (mode 0600)")
    acc_del = add(
        acc, "delete", cmd_accounts_delete, "erase an account, its configurations, usage and peers"
    )
    acc_del.add_argument("username")
    acc_del.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    plans = commands.add_parser("plans", help="quota plans")
    plan_commands = plans.add_subparsers(dest="plans_command", metavar="ACTION", required=True)
    plan_set = add(plan_commands, "set", cmd_plans_set, "create or change a plan")
    plan_set.add_argument("name")
    plan_set.add_argument("--quota", type=positive_int, required=True, metavar="BYTES")
    plan_set.add_argument("--reset", choices=[r.value for r in ResetRule], default="never")
    plan_set.add_argument(
        "--anchor-day", type=positive_int, default=1, help="monthly reset day (1-28)"
    )
    plan_set.add_argument("--price", help="price as billed, e.g. 4.99")
    plan_set.add_argument(
        "--validity-days",
        type=positive_int,
        metavar="DAYS",
        help="valid this many days from activation; buying it again (topup --plan) renews it",
    )
    plan_set.add_argument(
        "--valid-until", metavar="YYYY-MM-DD", help="the plan's last valid day, for everyone"
    )
    add(plan_commands, "list", cmd_plans_list, "list plans")

    peers = commands.add_parser("peers", help="configurations (WireGuard peers)")
    peer_commands = peers.add_subparsers(dest="peers_command", metavar="ACTION", required=True)
    peer_add = add(
        peer_commands,
        "add",
        cmd_peers_add,
        "new configuration: keys, addresses, client config shown once",
    )
    peer_add.add_argument("account")
    peer_add.add_argument("--nodes", metavar="NODE[,NODE..]")
    peer_add.add_argument("--all-nodes", action="store_true")
    quota = peer_add.add_mutually_exclusive_group()
    quota.add_argument("--quota", type=positive_int, metavar="BYTES")
    quota.add_argument("--plan")
    peer_add.add_argument("--name", help="configuration name (default ACCOUNT-N)")
    peer_add.add_argument(
        "--split-tunnel",
        metavar="NET[,NET..]",
        help="route only these networks through the tunnel (default: everything, IPv4 and "
        "IPv6, so nothing leaks beside it); kept through key rotations",
    )
    peer_add.add_argument(
        "--qr", action="store_true", help="also show each client config as a QR code"
    )
    peer_add.add_argument(
        "--out",
        metavar="FILE",
        help="write the client config to FILE (0600; FILE.NODE.conf for several nodes); "
        "'-' prints it on stdout (needed when stdout is not a terminal, and for --json)",
    )
    peer_list = add(peer_commands, "list", cmd_peers_list, "list configurations")
    peer_list.add_argument("--account")
    peer_list.add_argument("--node")
    peer_list.add_argument("--state", choices=["all", "enabled", "disabled"], default="all")
    peer_show = add(
        peer_commands, "show", cmd_peers_show, "one configuration with its top-ups and usage"
    )
    peer_show.add_argument("name")
    enable = add(
        peer_commands, "enable", cmd_peers_enable, "enable configurations on every node they are on"
    )
    enable.add_argument("names", nargs="+", metavar="NAME")
    disable = add(
        peer_commands, "disable", cmd_peers_disable, "disable configurations on every node"
    )
    disable.add_argument("names", nargs="+", metavar="NAME")
    disable.add_argument("--reason", choices=[r.value for r in DisabledReason], default="operator")
    remove = add(
        peer_commands,
        "remove",
        cmd_peers_remove,
        "remove configurations from the store and every node",
    )
    remove.add_argument("names", nargs="+", metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    topup = add(commands, "topup", cmd_topup, "grant quota to a configuration, once per invoice")
    topup.add_argument("configuration", nargs="?")
    grant = topup.add_mutually_exclusive_group()
    grant.add_argument("--bytes", type=positive_int)
    grant.add_argument("--plan")
    topup.add_argument("--amount", help="amount billed, e.g. 4.99")
    topup.add_argument("--invoice", help="invoice number (unique)")
    topup.add_argument(
        "--from",
        dest="batch",
        metavar="FILE",
        help="JSON lines or CSV (configuration, amount, invoice, bytes|plan); - reads stdin; "
        "all lines are checked before any is applied",
    )

    for name in ("apply", "reconcile"):
        apply = add(commands, name, cmd_apply, "push the whole desired state to the nodes")
        apply.add_argument(
            "--dry-run", action="store_true", help="show each node's plan, change nothing"
        )
        apply.add_argument("--nodes", action="append", metavar="NODE[,NODE..]")
        apply.add_argument(
            "--shard", metavar="I/N", help="push only shard I of N (see `sync --shard`)"
        )
    apply_file = commands.choices["apply"]  # `reconcile` stays a push of the store's state
    apply_file.description = (
        "push the whole desired state to the nodes; with -f, first make the fleet match a "
        "fleet file (exactly the changes `wgfleet plan -f` shows)"
    )
    apply_file.add_argument("-f", "--file", metavar="FILE", help="a fleet file to apply")
    apply_file.add_argument(
        "--plan-file", metavar="PLAN", help="apply a plan saved by `plan --out`, if still valid"
    )
    apply_file.add_argument("--yes", action="store_true", help="apply without asking")

    register_sync(commands, add)

    nodes = commands.add_parser("nodes", help="the nodes the store knows")
    node_commands = nodes.add_subparsers(dest="nodes_command", metavar="ACTION", required=True)
    add(node_commands, "list", cmd_nodes_list, "nodes with pending pushes and key age")
    from orchestrator.cli.keys import register_trust

    register_trust(node_commands, add)


# --- sync and usage -----------------------------------------------------------------------------


def _shard(args: argparse.Namespace) -> Any:
    from orchestrator.core.shard import parse_shard

    text = getattr(args, "shard", None)
    if not text:
        return None
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise UsageError(f"--shard: {exc}") from None


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


def cmd_sync(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service import sync as sync_service
    from orchestrator.service.lock import fleet_lock

    shard = _shard(args)
    if args.every:
        if args.nodes:
            raise UsageError("--every syncs the whole fleet (or --shard): drop --nodes")
        return _sync_every(args, settings, output, shard)
    with fleet_lock(settings, wait=args.wait, shard=shard), _fleet(settings, write=False) as fleet:
        result = sync_service.sync(
            fleet,
            nodes=_names(args.nodes) if args.nodes else None,
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
    from orchestrator.service.sync_loop import LoopRun, sync_every

    try:
        interval = parse_duration(args.every)
    except ValueError as exc:
        raise UsageError(f"--every: {exc}") from None
    if interval < 1:
        raise UsageError("--every: give an interval of at least 1s")
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

    sync_every(
        settings,
        interval,
        report,
        stop=stop,
        runs=args.runs,
        shard=shard,
        warn_percent=args.warn_at,
    )
    return ExitCode.OK


def cmd_usage_check(args: argparse.Namespace, settings: Settings, output: Output) -> int:
    from orchestrator.service.usage import usage_check

    with _fleet(settings, write=False) as fleet:
        mismatches = usage_check(fleet)
        count = len(fleet.store.running_totals().granted)
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
    from orchestrator.service.usage import quota_statuses

    with _fleet(settings, write=False) as fleet:
        statuses = quota_statuses(fleet, date.today())
    rows: list[dict[str, Any]] = [
        {
            "configuration": s.configuration,
            "period_start": s.period_start,
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
                str(r["period_start"]),
                _gib(r["used"]),
                _gib(r["allowance"]) if r["allowance"] is not None else "unmetered",
                _gib(r["remaining"]),
            )
        output.out.print(table)

    output.result(rows, render)
    return ExitCode.OK


def register_sync(commands: Any, add: Registrar) -> None:
    sync = add(
        commands, "sync", cmd_sync, "pull counters, account usage, enforce quotas (cron-ready)"
    )
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
    sync.add_argument("--runs", type=positive_int, default=None, help=argparse.SUPPRESS)
    sync.add_argument(
        "--warn-at",
        type=positive_int,
        default=None,
        metavar="PERCENT",
        help="report configurations at this share of their quota (default: usage.warn_percent, 80)",
    )
    usage = commands.add_parser("usage", help="usage totals")
    usage_commands = usage.add_subparsers(dest="usage_command", metavar="ACTION", required=True)
    add(
        usage_commands,
        "check",
        cmd_usage_check,
        "recompute totals from top-ups and usage; exit 1 on mismatch",
    )
    add(usage_commands, "list", cmd_usage_list, "used and remaining quota per configuration")
