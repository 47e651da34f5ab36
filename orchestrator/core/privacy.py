"""The privacy profile as data: what each kind of record is, why it is kept, for how long, and
what is never kept; plus which top-ups have outlived their retention. Pure: the service feeds
it the live schema, the settings in force and the nodes' audit verdicts.

The report is built from the live schema, never from a hand-written list alone: a table or a
column the profile does not describe is reported as undeclared, and `privacy report` fails on
it, so the published inventory cannot silently fall behind the code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from orchestrator.core.metrics import metrics_facts
from orchestrator.core.models import OPERATIONS_KEPT, Plan, ResetRule, TopUp
from orchestrator.core.quota import period_start


@dataclass(frozen=True)
class Retention:
    """The profile's retention settings, in days (0: kept)."""

    closed_periods_days: int
    node_daily_totals: bool
    node_daily_days: int
    topup_days: int
    deleted_ledger_days: int
    allow_contact: bool


@dataclass(frozen=True)
class RecordKind:
    table: str
    what: str
    why: str
    kept: str  # for how long, in words, from the retention settings
    columns: tuple[str, ...]


def _days(days: int, otherwise: str) -> str:
    return f"{days} days" if days else otherwise


def record_kinds(profile: Retention) -> dict[str, RecordKind]:
    """Every table the store may hold, described for a published data inventory."""
    kinds = [
        RecordKind(
            "accounts",
            "an account: username, password hash, device id"
            + (", an optional contact number" if profile.allow_contact else ""),
            "to sign the user in and tie configurations to a customer"
            + (
                "; the contact number receives quota notifications" if profile.allow_contact else ""
            ),
            "until the account is deleted (then erased, also from the store's files)",
            ("username", "password_hash", "device_id", "contact"),
        ),
        RecordKind(
            "configurations",
            "a VPN configuration: name, public keys, preshared-key reference, plan, quota, "
            "enabled/disabled and why, key creation dates, granted bytes, last valid day, the "
            "billing period a quota warning was sent for, the networks of a split tunnel the "
            "operator chose",
            "to place the peer on nodes and enforce the quota bought",
            "until the configuration or its account is deleted",
            (
                "name",
                "public_key",
                "psk_ref",
                "plan",
                "quota_bytes",
                "enabled",
                "disabled_reason",
                "key_created_on",
                "psk_created_on",
                "previous_public_key",
                "previous_psk_ref",
                "previous_key_expires",
                "granted_bytes",
                "valid_until",
                "warned_period",
                "split_tunnel",
            ),
        ),
        RecordKind(
            "configuration_nodes",
            "which nodes carry a configuration, and its tunnel address there",
            "to configure the peer on those nodes",
            "until the configuration is deleted",
            ("node", "tunnel_address"),
        ),
        RecordKind(
            "usage_totals",
            "bytes received and sent per configuration per billing period (a total, never "
            "per day or per connection)",
            "to enforce the quota; the only usage data kept about a user",
            "the current period, and closed periods for "
            + _days(profile.closed_periods_days, "ever"),
            ("period_start", "rx_bytes", "tx_bytes"),
        ),
        RecordKind(
            "topups",
            "top-up transactions: invoice, amount, bytes granted, purchase date",
            "to grant quota and to account for payments",
            (
                f"{profile.topup_days} days after purchase once they no longer count towards a "
                "quota"
                if profile.topup_days
                else "kept (no retention limit set)"
            )
            + "; a deleted account's (unlinked from any configuration): "
            + _days(profile.deleted_ledger_days, "kept (no retention limit set)"),
            ("invoice", "amount", "bytes_granted", "purchased_on"),
        ),
        RecordKind(
            "node_counters",
            "per node, the last byte counters read for each configuration's public key (the "
            "keys, in the node's order, apart from the numbers)",
            "so the next sync counts each byte exactly once",
            "while the peer is on the node; forgotten when it leaves or is deleted",
            ("node", "peers", "counters"),
        ),
        RecordKind(
            "pending_removals",
            "per node, the public keys the controller is taking off it (a disabled, cut-off, "
            "expired, removed or deleted configuration's, or a replaced key's); a deleted "
            "account's keep no link to it",
            "so no access outlives its revocation: a node that missed the removal gets it on "
            "the next sync or push, and a key's last bytes still count",
            "until the node confirmed the removal, normally the same command",
            ("node", "public_key"),
        ),
        RecordKind(
            "node_daily_totals",
            "bytes per node per day (a location, never a user)"
            if profile.node_daily_totals
            else "nothing (the profile keeps no daily totals; rows are erased on every sync)",
            "capacity planning per location",
            _days(profile.node_daily_days, "kept") if profile.node_daily_totals else "not kept",
            ("node", "day", "bytes"),
        ),
        RecordKind(
            "notifications",
            "events waiting for the operator's hook: their kind and the configuration or node "
            "they are about (no time, no address)",
            "to tell the operator (and the user's contact) once",
            "until delivered, normally the end of the run that raised them",
            ("kind", "subject"),
        ),
        RecordKind(
            "store_totals",
            "the used-bytes total of the whole store",
            "`usage check` verifies it against the usage rows",
            "always (one number)",
            ("name", "bytes"),
        ),
        RecordKind(
            "nodes",
            "the provider's VPN nodes: name, address (and the one clients connect to), tunnel "
            "network, port, keys, push and sync state (when it last answered a sync), last audit "
            "verdict",
            "to deploy, push and audit",
            "while the node exists",
            (
                "name",
                "address",
                "tunnel_network",
                "listen_port",
                "interface",
                "public_key",
                "key_created_on",
                "revision",
                "pushed_revision",
                "last_push_ok",
                "last_sync_ok",
                "last_sync_at",
                "last_audit_ok",
                "next_public_key",
                "next_listen_port",
                "next_key_expires",
                "next_key_created_on",
                "client_host",
            ),
        ),
        RecordKind(
            "tunnel_prefixes",
            "the fleet's IPv6 tunnel prefix (a unique local /48)",
            "every controller gives nodes and configurations the same IPv6 addresses",
            "always (one row)",
            ("family", "prefix"),
        ),
        RecordKind(
            "node_networks6",
            "each node's IPv6 tunnel /64 (a configuration's IPv6 address is derived from its "
            "IPv4 address there, never stored)",
            "to configure the node and its peers' IPv6 addresses",
            "while the node exists",
            ("node", "network"),
        ),
        RecordKind(
            "plans",
            "the provider's plans",
            "quota rules",
            "while offered",
            ("name", "quota_bytes", "reset", "anchor_day", "price", "validity_days", "valid_until"),
        ),
        RecordKind(
            "policies",
            "fleet-wide settings applied from a fleet file",
            "every controller enforces the same rules",
            "until replaced",
            ("name", "value"),
        ),
        RecordKind(
            "node_leases",
            "which controller run is syncing a node",
            "two runs never sync one node at once",
            "minutes",
            ("node", "holder", "expires_at"),
        ),
        RecordKind(
            "controller_keys",
            "the controller's own SSH public keys and their creation dates",
            "key rotation",
            "until rotated",
            ("purpose", "public_key", "created_on"),
        ),
        RecordKind(
            "operations",
            "which use case each writing run of a controller ran, when, how it ended, and for a "
            "run of the HTTP API the name of the token that made it",
            "the operator's audit trail of their own runs; it names no user",
            f"the newest {OPERATIONS_KEPT:,} runs",
            (
                "operation",
                "controller",
                "started_at",
                "finished_at",
                "outcome",
                "steps",
                "actor",
            ),
        ),
        RecordKind(
            "api_tokens",
            "the HTTP API's tokens: name, a non-secret id, the SHA-256 of the secret (never "
            "the secret), scopes, the day made, the last valid day, revoked or not",
            "to let the provider's billing backend, app and monitoring call `wgfleet serve`, "
            "each only where its scopes allow",
            "until deleted with the store (a revoked token's row stays, so its name keeps "
            "meaning one token in the operations trail)",
            (
                "name",
                "token_id",
                "secret_hash",
                "scopes",
                "created_on",
                "expires_on",
                "revoked",
            ),
        ),
        RecordKind(
            "sealed_secrets",
            "each configuration's preshared key, sealed (AES-256-GCM) under a key derived from "
            "the fleet secret, which the store never holds; the id of the key that sealed it",
            "so that any controller holding the fleet secret can push the configuration again",
            "until the configuration or its account is deleted, or the key is rotated",
            ("ref", "key_id", "sealed"),
        ),
        RecordKind(
            "fleet_key",
            "the id of the fleet's current key (a fingerprint derived from the fleet secret, "
            "not the secret)",
            "to refuse a controller holding another fleet secret before it seals anything",
            "until the fleet secret is rotated",
            ("key_id",),
        ),
        RecordKind(
            "controllers",
            "the fleet's controllers: a name, the public halves of its deploy, collector and "
            "push SSH keys (never a private key), the day registered, the day revoked",
            "so the nodes accept every registered controller's keys and refuse a revoked one's",
            "until deleted with the store (a revoked controller's row stays, so every deploy "
            "keeps its keys off the nodes)",
            ("name", "deploy_key", "collector_key", "push_key", "added_on", "revoked_on"),
        ),
        RecordKind(
            "shared_files",
            "on PostgreSQL, the files every controller shares: the nodes' pinned SSH host keys "
            "(public), the converged-deploy fingerprints (hashes) and the fleet file's node "
            "settings",
            "so any controller of the fleet trusts the same host keys and deploys alike",
            "until replaced by the next change",
            ("name", "content"),
        ),
        RecordKind(
            "schema_migrations",
            "the store's schema version",
            "upgrades",
            "always",
            ("version", "description"),
        ),
    ]
    return {kind.table: kind for kind in kinds}


# What the profile never lets the store or a node keep: the promises of the published policy.
NEVER_KEPT = (
    "traffic contents",
    "DNS queries",
    "source or destination IP addresses of user traffic",
    "client endpoints (the public address a client connects from)",
    "connection or handshake times, session lengths",
    "usage by day, hour or connection for a user (only a total per billing period)",
)


@dataclass(frozen=True)
class NodeFacts:
    """What the nodes keep, from the deploy's settings and the last audit."""

    journal: str  # e.g. "volatile (memory only), at most 8M, entries older than 1h dropped"
    audited: Mapping[str, bool | None]  # node -> last audit verdict (None: never audited)
    # The node resolver (role resolver), in words: where it answers, what it logs and keeps.
    resolver: str = "none"


def undeclared(columns: Mapping[str, Iterable[str]], kinds: Mapping[str, RecordKind]) -> list[str]:
    """Tables or columns in the live schema the profile does not describe."""
    missing = []
    for table, names in sorted(columns.items()):
        kind = kinds.get(table)
        if kind is None:
            missing.append(table)
            continue
        missing += [
            f"{table}.{c}" for c in names if c not in kind.columns and c not in _INTERNAL_IDS
        ]
    return missing


_INTERNAL_IDS = {"id", "account_id", "configuration_id"}


def client_config_facts(dns_servers: Sequence[str] = ()) -> list[str]:
    """What every client configuration wgfleet hands out carries (issue 21: leak nothing)."""
    dns = (
        f"DNS: the fleet's chosen servers ({', '.join(dns_servers)}), reached through the tunnel"
        if dns_servers
        else "DNS: the node's own tunnel addresses (IPv4 and IPv6), so queries go through the "
        "tunnel to the node, never to the user's network"
    )
    return [
        "Address: one IPv4 /32 and one IPv6 /128 inside the node's tunnel networks (the IPv6 "
        "address follows from the IPv4 one; it is not stored)",
        "AllowedIPs: 0.0.0.0/0 and ::/0, so IPv6 never leaves beside the tunnel (a node "
        "without IPv6 egress drops it); a split tunnel only where the operator chose one for "
        "that configuration",
        dns,
        "the private key is made on the controller, shown once and kept nowhere",
    ]


def build_report(
    columns: Mapping[str, Iterable[str]],
    profile: Retention,
    nodes: NodeFacts,
    store: str,
    dns_servers: Sequence[str] = (),
) -> dict[str, Any]:
    """The data inventory a provider can publish, as JSON-ready data."""
    kinds = record_kinds(profile)
    present = [kinds[t] for t in sorted(columns) if t in kinds]
    notes = [
        "Root logins over SSH (the controller's deploy, audit and diagnostics) leave lines in "
        "each node's journal, which lives in memory only and is dropped after its retention.",
        "Each node's resolver holds the names recently asked and their answers in its "
        "memory cache, without the asking client's address; a restart or power-off drops it.",
        "Backups of the store keep what the store held when they were taken: expire them on "
        "the same schedule.",
        "The HTTP API (`wgfleet serve`) keeps no access log, no client address and no user "
        "agent; a write leaves only its row in the operations trail, naming the token that "
        "made it. Wrong tokens are slowed by one counter for the whole process, which holds "
        "no address either.",
    ]
    if profile.node_daily_totals:
        notes.append(
            "A daily total per node is about one person when a node serves a single user: "
            "keep such nodes out of the daily totals or turn them off."
        )
    if store == "postgresql":
        notes.append(
            "PostgreSQL keeps erased rows in its write-ahead log and in dead tuples until "
            "VACUUM (`wgfleet db scrub`) and WAL recycling; archive and backup retention is "
            "the database operator's."
        )
    return {
        "store": store,
        "records": [
            {"table": k.table, "what": k.what, "why": k.why, "kept": k.kept} for k in present
        ],
        "never_kept": list(NEVER_KEPT),
        "contact_numbers": "allowed" if profile.allow_contact else "not kept",
        "client_configs": client_config_facts(dns_servers),
        "metrics": metrics_facts(profile.node_daily_totals),
        "nodes": {
            "journal": nodes.journal,
            "resolver": nodes.resolver,
            "audit": {
                name: ("passed" if ok else "failed" if ok is False else "never audited")
                for name, ok in sorted(nodes.audited.items())
            },
        },
        "notes": notes,
        "undeclared": undeclared(columns, kinds),
    }


def topups_past_retention(
    topups: Iterable[TopUp],
    plan_of: Mapping[str, str | None],
    plans: Mapping[str, Plan],
    today: date,
    profile: Retention,
) -> list[str]:
    """Invoices of the top-ups the profile lets go: a linked one only once its bytes no longer
    count (bought before its monthly plan's current period) and it is older than the topup
    retention; an unlinked one (a deleted account's) once older than the ledger retention."""
    erase = []
    for topup in topups:
        if topup.configuration is None:
            days = profile.deleted_ledger_days
            if days and topup.purchased_on < today - timedelta(days=days):
                erase.append(topup.invoice)
            continue
        days = profile.topup_days
        if not days or topup.purchased_on >= today - timedelta(days=days):
            continue
        name = plan_of.get(topup.configuration)
        plan = plans.get(name) if name else None
        monthly = plan is not None and plan.reset == ResetRule.MONTHLY
        if monthly and plan is not None and topup.purchased_on < period_start(plan, today):
            erase.append(topup.invoice)
    return sorted(erase)
