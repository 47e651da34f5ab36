"""Declarative runs: plan a fleet file against the fleet, apply exactly that plan, export one.

`plan` reads the store and the inventory and changes nothing. `apply` recomputes the plan,
refuses if it is not the one the caller saw (a saved plan's fingerprint), deploys the nodes
the plan names, makes every store change in one transaction and then pushes the nodes whose
peers changed. `export` writes what the store holds as a fleet file, so export then plan shows
no changes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters.input_files import read_bytes
from orchestrator.core.fleetfile import (
    FleetFile,
    FleetFileError,
    FleetFileInvalid,
    parse_fleet_file,
)
from orchestrator.core.fleetplan import (
    MANAGED_PASSWORD,
    Change,
    FleetState,
    node_settings,
    plan_changes,
    plan_problems,
    render_plan,
)
from orchestrator.core.input_limits import FLEET_FILE_MAX_BYTES, SAVED_PLAN_MAX_BYTES
from orchestrator.core.keys import KeyAge
from orchestrator.core.models import Account, Configuration, DisabledReason, Plan, ResetRule
from orchestrator.core.peers import PoolExhausted, allocate_address
from orchestrator.core.text_input import TextInputError, decode_text
from orchestrator.core.units import format_size
from orchestrator.errors import ConfigError, StoreError, UsageError, WgfleetError
from orchestrator.service import deploy as deploy_service
from orchestrator.service.context import Fleet, writes
from orchestrator.service.keys import key_status
from orchestrator.service.peers import drop_secrets
from orchestrator.service.push import PushResult, pending_nodes, push
from orchestrator.settings import Settings

PLAN_FORMAT = "wgfleet-plan/1"


class PlanRefused(WgfleetError):
    """The plan cannot be applied as it stands (the store would refuse it, or it is stale)."""


class FleetFileRejected(UsageError, FleetFileInvalid):
    """The fleet file is invalid (exit 2): ``errors`` lists every error, one line each; the
    message holds the first ones on one line. Still a FleetFileInvalid for older callers."""

    def __init__(self, errors: list[FleetFileError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:5])
        more = f"; and {len(errors) - 5} more error(s)" if len(errors) > 5 else ""
        Exception.__init__(self, shown + more)


@dataclass(frozen=True)
class FleetPlan:
    source: str
    file_digest: str  # the fleet file's bytes, so a saved plan names the file it came from
    fingerprint: str  # the fleet's state the plan was computed from
    changes: tuple[Change, ...]
    problems: tuple[str, ...]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.is_change]

    def render(self) -> str:
        """The readable diff; problems go to stderr, one `wgfleet: error:` line each."""
        return render_plan(list(self.changes))

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "file": self.source,
            "file_sha256": self.file_digest,
            "fingerprint": self.fingerprint,
            "changes": [c.as_dict() for c in self.changes],
            "pending": len(self.pending),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class ApplyResult:
    plan: FleetPlan
    deploy: deploy_service.DeployResult | None = None
    push: PushResult | None = None
    applied: tuple[Change, ...] = field(default=())

    @property
    def ok(self) -> bool:
        deployed = self.deploy is None or self.deploy.ok
        return deployed and (self.push is None or self.push.ok)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "applied": [c.as_dict() for c in self.applied],
            "deploy": self.deploy.as_dict() if self.deploy else None,
            "push": self.push.as_dict() if self.push else None,
        }


def read_fleet_file(path: str | Path) -> tuple[FleetFile, str]:
    """The parsed file and the digest of its bytes. A file over FLEET_FILE_MAX_BYTES is
    refused by its size before it is read (ConfigError); an invalid one raises
    FleetFileRejected listing every error. Both exit 2."""
    data = read_bytes(path, FLEET_FILE_MAX_BYTES, "a fleet file")
    try:
        text = decode_text(data)
        return parse_fleet_file(text, str(path)), hashlib.sha256(data).hexdigest()
    except TextInputError as exc:
        error = FleetFileError(str(path), exc.line, "(file)", exc.value, exc.problem)
        raise FleetFileRejected([error]) from None
    except FleetFileInvalid as exc:
        raise FleetFileRejected(exc.errors) from None


def fleet_state(fleet: Fleet, file: FleetFile, today: date | None = None) -> FleetState:
    """Everything a plan compares the file with, read once."""
    store = fleet.store
    declared = {a.username for a in file.accounts}
    accounts = tuple(
        a for a in store.accounts() if a.username in declared or a.password_hash == MANAGED_PASSWORD
    )
    names = {a.username for a in accounts}
    everything = store.configurations()
    overdue = tuple(
        f"{age.record.kind.value} {age.record.subject}" for age in _overdue(fleet, today)
    )
    return FleetState(
        nodes=tuple(store.nodes()),
        plans=tuple(store.plans()),
        accounts=accounts,
        configurations=tuple(c for c in everything if c.account in names),
        overdue_keys=overdue,
        all_configurations=tuple(everything),
        node_vars=_host_vars(fleet.settings),
        policies={k: json.loads(v) for k, v in store.policies().items()},
        ipv6_prefix=str(store.ipv6_prefix()),
        nodes_with_network6=store.count_networks6(),
    )


def _host_vars(settings: Settings) -> dict[str, dict[str, Any]]:
    """The inventory's hosts; none yet (a fleet without nodes) is not an error for a plan."""
    try:
        return deploy_service.node_host_vars(settings)
    except ConfigError:
        return {}


def _overdue(fleet: Fleet, today: date | None) -> list[KeyAge]:
    # A plan only reads: SSH keys not yet on record are left for a writing command to note.
    return [age for age in key_status(fleet, today=today, record=False) if age.overdue]


def _inventory_problems(file: FleetFile, settings: Settings) -> list[str]:
    if file.inventory is None:
        return []
    named = (Path(file.source).parent / file.inventory).resolve()
    used = deploy_service.inventory_path(settings).resolve()
    if named not in (used, used.parent):
        return [
            f"inventory: {file.inventory} is not the inventory these settings deploy with "
            f"({used}); point the settings' `inventory` at it"
        ]
    return []


def _contact_problems(file: FleetFile, settings: Settings) -> list[str]:
    """Contact numbers the privacy profile in force after this file would not keep."""
    allowed = file.policies.privacy.get("allow_contact", settings.privacy.allow_contact)
    if allowed:
        return []
    return [
        f"accounts.{a.username}.contact: the privacy profile keeps no contact numbers "
        "(privacy.allow_contact is false)"
        for a in file.accounts
        if a.contact
    ]


def plan(fleet: Fleet, path: str | Path, today: date | None = None) -> FleetPlan:
    file, digest = read_fleet_file(path)
    return _plan(fleet, file, digest, today)


def plan_read(fleet: Fleet, file: FleetFile, digest: str, today: date | None = None) -> FleetPlan:
    """The plan of a file already read with `read_fleet_file` (a caller that checks the file
    before it opens the store)."""
    return _plan(fleet, file, digest, today)


def _plan(fleet: Fleet, file: FleetFile, digest: str, today: date | None) -> FleetPlan:
    state = fleet_state(fleet, file, today)
    changes = plan_changes(file, state)
    problems = (
        _inventory_problems(file, fleet.settings)
        + plan_problems(file, state, changes)
        + _contact_problems(file, fleet.settings)
    )
    return FleetPlan(file.source, digest, state.fingerprint(), tuple(changes), tuple(problems))


def load_saved_plan(path: str | Path) -> dict[str, Any]:
    """A `plan --out` file, refused by its size (SAVED_PLAN_MAX_BYTES) before it is read and
    whole when it is not one (exit 2)."""
    data = read_bytes(path, SAVED_PLAN_MAX_BYTES, "a saved plan")
    try:
        saved = json.loads(decode_text(data))
    except TextInputError as exc:
        raise ConfigError(str(path), "(file)", exc.value, exc.problem, line=exc.line) from None
    except (ValueError, RecursionError) as exc:
        # json's own errors, a number past 4,300 digits, nesting past the interpreter's stack
        raise ConfigError(str(path), "(file)", "", f"not a saved plan: {exc}") from None
    if not isinstance(saved, dict) or saved.get("format") != PLAN_FORMAT:
        raise ConfigError(
            str(path),
            "format",
            saved.get("format") if isinstance(saved, dict) else None,
            f"expected {PLAN_FORMAT} (write it with `plan --out`)",
        )
    for name, pattern in _SAVED_PLAN_FIELDS.items():
        value = saved.get(name)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ConfigError(
                str(path), name, value, "not what `plan --out` writes: run `wgfleet plan` again"
            )
    return saved


# What apply reads of a saved plan (the rest it recomputes and compares).
_SAVED_PLAN_FIELDS = {
    "file": re.compile(r"[^\x00-\x1f\x7f]{1,4096}"),
    "file_sha256": re.compile(r"[0-9a-f]{64}"),
    "fingerprint": re.compile(r"[0-9A-Za-z:._-]{1,200}"),
}


@writes
def apply(
    fleet: Fleet,
    path: str | Path,
    *,
    saved: Mapping[str, Any] | None = None,
    today: date | None = None,
    on_deploy_update: deploy_service.OnUpdate | None = None,
    progress: Callable[[str], None] | None = None,
) -> ApplyResult:
    """Apply the file's plan; with ``saved`` (a `plan --out` file) only if nothing moved since.

    Nodes deploy first (a configuration may name a node this
    plan brings up), then every store change lands in one transaction, then a push carries the
    changed peers to the nodes; a node that misses the push stays pending for the next run.
    """
    say = progress or (lambda _text: None)
    fleet.record(f"apply {path}")
    file, digest = read_fleet_file(path)
    fleet_plan = _plan(fleet, file, digest, today)
    if fleet_plan.problems:
        raise PlanRefused("; ".join(fleet_plan.problems))
    if saved is not None:
        if saved.get("file_sha256") != digest:
            raise PlanRefused(f"{path} changed since the plan was saved: run `wgfleet plan` again")
        if saved.get("fingerprint") != fleet_plan.fingerprint:
            raise PlanRefused(
                "the fleet changed since the plan was saved "
                f"({saved.get('fingerprint')} -> {fleet_plan.fingerprint}): "
                "run `wgfleet plan` again"
            )
    pending = fleet_plan.pending
    if not pending:
        return ApplyResult(fleet_plan)

    deployed = None
    node_changes = [c for c in pending if c.kind == "node"]
    if node_changes:
        say(f"deploying {', '.join(c.subject for c in node_changes)}")
        deployed = _deploy_nodes(fleet, file, node_changes, on_deploy_update)
        if not deployed.ok:
            return ApplyResult(fleet_plan, deploy=deployed)

    with fleet.store.transaction():
        _apply_store_changes(fleet, file, pending, today or date.today())
    # The policies just stored (key ages, dns...) rule the rest of this session too.
    fleet.reload_policies()
    nodes = pending_nodes(fleet)
    say(f"pushing to {len(nodes)} node(s)" if nodes else "no node needs a push")
    pushed = push(fleet, nodes) if nodes else None
    if any(c.kind == "account" and c.action == "remove" for c in pending):
        # Erased accounts leave the store's files too (nothing else has them open in a
        # pipeline run; if something does, `wgfleet db scrub` finishes it).
        fleet.store.scrub()
    # dns.servers is the clients' (their configs), not the nodes': it needs no deploy.
    upstream = ("dns.forwarders", "dns.forward_tls")
    if any(c.kind == "policy" and c.subject in upstream for c in pending):
        # The resolver's upstream is a deploy variable of every node: the store holds the new
        # one now, so a deploy gives it to them (a failed node gets it on the next deploy,
        # whose inputs still differ from its last full run).
        say("deploying every node: the resolver's upstream changed")
        deployed = deploy_service.deploy(fleet, on_update=on_deploy_update)
    return ApplyResult(fleet_plan, deployed, pushed, tuple(pending))


def _deploy_nodes(
    fleet: Fleet,
    file: FleetFile,
    changes: list[Change],
    on_update: deploy_service.OnUpdate | None,
) -> deploy_service.DeployResult:
    """Lay the file's node settings over the inventory and deploy the nodes that changed."""
    settings = fleet.settings
    overlay = {
        spec.name: {
            key: value
            for key, value in (
                ("wireguard_port", spec.port),
                ("wgfleet_tunnel_network", spec.tunnel_network),
                ("wireguard_implementation", spec.implementation),
                ("wireguard_ipv6_egress", spec.ipv6_egress),
                ("wgfleet_client_endpoint", spec.client_endpoint),
            )
            if value is not None
        }
        for spec in file.nodes
    }
    ports = {c.subject: int(c.after["port"]) for c in changes if "port" in c.after}
    listen_ports = {n.name: n.listen_port for n in fleet.store.nodes()}
    previous = deploy_service.fleet_nodes_path(settings)
    kept = previous.read_text(encoding="utf-8") if previous.exists() else None
    deploy_service.write_fleet_nodes(settings, overlay)
    result = deploy_service.deploy(
        fleet,
        limit=",".join(sorted(c.subject for c in changes)),
        on_update=on_update,
        extravars={"wgfleet_listen_ports": {**listen_ports, **ports}},
    )
    if not result.ok:
        # The nodes did not take the settings: put the previous ones back so the next plan
        # still shows the change instead of believing it was made.
        if kept is None:
            previous.unlink(missing_ok=True)
        else:
            previous.write_text(kept, encoding="utf-8")
        return result
    for name, port in ports.items():
        if name in listen_ports:
            fleet.store.set_listen_port(name, port)
    return result


def _apply_store_changes(fleet: Fleet, file: FleetFile, changes: list[Change], today: date) -> None:
    store = fleet.store
    by_kind: dict[str, list[Change]] = {}
    for change in changes:
        by_kind.setdefault(change.kind, []).append(change)

    for change in by_kind.get("ipv6", []):
        store.set_ipv6_prefix(ipaddress.IPv6Network(change.after["prefix"]))

    if by_kind.get("policy"):
        wanted = {c.subject: c.after["value"] for c in by_kind["policy"] if c.action != "remove"}
        kept = {
            name: value
            for name, value in store.policies().items()
            if name not in {c.subject for c in by_kind["policy"]}
        }
        store.replace_policies({**kept, **{k: json.dumps(v) for k, v in wanted.items()}})

    plans = {p.name: p for p in file.plans}
    for change in by_kind.get("plan", []):
        if change.action in ("add", "change"):
            plan_spec = plans[change.subject]
            store.upsert_plan(
                Plan(
                    plan_spec.name,
                    plan_spec.quota_bytes,
                    ResetRule(plan_spec.reset),
                    plan_spec.anchor_day,
                    plan_spec.price,
                    plan_spec.validity_days,
                    date.fromisoformat(plan_spec.valid_until) if plan_spec.valid_until else None,
                )
            )

    accounts = {a.username: a for a in file.accounts}
    for change in by_kind.get("account", []):
        account_spec = accounts.get(change.subject)
        if change.action == "add" and account_spec is not None:
            store.add_account(
                Account(
                    account_spec.username,
                    MANAGED_PASSWORD,
                    account_spec.device_id,
                    account_spec.contact,
                )
            )
        elif change.action == "change" and account_spec is not None:
            store.update_account(
                account_spec.username, account_spec.device_id, account_spec.contact
            )

    configs = {c.name: c for c in file.configurations}
    nodes = {n.name: n for n in store.nodes()}
    for change in by_kind.get("configuration", []):
        name = change.subject
        if change.action == "remove":
            drop_secrets(fleet, store.remove_configurations([name]))
            continue
        spec = configs[name]
        if change.action == "add":
            addresses = _addresses(store, nodes, spec.nodes, {})
            store.add_configuration(
                Configuration(
                    name=name,
                    account=spec.account,
                    public_key=spec.public_key,
                    psk_ref=None,  # a static configuration brings its own key, no preshared key
                    addresses=addresses,
                    plan=spec.plan,
                    quota_bytes=spec.quota_bytes,
                    enabled=spec.enabled,
                    disabled_reason=None if spec.enabled else DisabledReason.OPERATOR,
                    key_created_on=today,
                )
            )
            continue
        current = store.configuration(name)
        if "public_key" in change.after:
            if current.previous_public_key is not None:
                raise PlanRefused(
                    f"configurations.{name}.public_key: the configuration is still in a key "
                    "rotation's grace; apply again once it ends"
                )
            # The replaced key's grace ends now: the push takes it off the nodes and its last
            # counters are still counted for this configuration.
            store.begin_peer_rotation(name, spec.public_key, None, today, previous_expires=0)
        store.update_configuration(
            name,
            plan=spec.plan,
            quota_bytes=spec.quota_bytes,
            addresses=_addresses(store, nodes, spec.nodes, current.addresses),
        )
        if "enabled" in change.after:
            store.set_enabled(
                [name], spec.enabled, None if spec.enabled else DisabledReason.OPERATOR
            )

    for change in by_kind.get("account", []):
        if change.action == "remove":
            drop_secrets(fleet, store.delete_account(change.subject))
    for change in by_kind.get("plan", []):
        if change.action == "remove":
            store.remove_plan(change.subject)


def _addresses(
    store: Any,
    nodes: Mapping[str, Any],
    wanted: tuple[str, ...],
    current: Mapping[str, ipaddress.IPv4Address],
) -> dict[str, ipaddress.IPv4Address]:
    """Keep the addresses a configuration has; allocate one on each node it newly joins."""
    addresses = {n: a for n, a in current.items() if n in wanted}
    for name in wanted:
        if name in addresses:
            continue
        if name not in nodes:
            raise PlanRefused(f"node {name} is not deployed: list it under nodes to deploy it")
        try:
            addresses[name] = allocate_address(
                nodes[name].tunnel_network, store.taken_addresses(name)
            )
        except PoolExhausted as exc:
            raise StoreError(str(exc)) from None
    return addresses


# --- export -------------------------------------------------------------------------------------


def export(fleet: Fleet) -> str:
    """The store as a fleet file: nodes, plans, policies and the accounts a file manages.

    Customers' accounts are never exported: a fleet file lives in a repository, and a
    customer's username, device and contact have no place there.
    """
    store = fleet.store
    host_vars = _host_vars(fleet.settings)
    nodes: dict[str, Any] = {}
    for node in store.nodes():
        current = node_settings(host_vars.get(node.name, {}))
        base = current["port"]
        nodes[node.name] = {
            "address": node.address,
            "tunnel_network": str(node.tunnel_network),
            "port": base if node.listen_port in (base, base + 1) else node.listen_port,
            "implementation": current["implementation"],
            "ipv6_egress": current["ipv6_egress"],
            "client_endpoint": current["client_endpoint"],
        }
    plans = {
        p.name: {
            "quota": format_size(p.quota_bytes),
            "reset": p.reset.value,
            "anchor_day": p.anchor_day,
            **({"price": p.price} if p.price is not None else {}),
            **({"validity_days": p.validity_days} if p.validity_days else {}),
            **({"valid_until": p.valid_until.isoformat()} if p.valid_until else {}),
        }
        for p in store.plans()
    }
    managed = [a for a in store.accounts() if a.password_hash == MANAGED_PASSWORD]
    accounts = {
        a.username: {"device_id": a.device_id, **({"contact": a.contact} if a.contact else {})}
        for a in managed
    }
    names = set(accounts)
    configurations = []
    for config in store.configurations():
        if config.account not in names:
            continue
        entry: dict[str, Any] = {
            "name": config.name,
            "account": config.account,
            "nodes": list(config.nodes),
            "public_key": config.public_key,
        }
        if config.plan is not None:
            entry["plan"] = config.plan
        else:
            quota = config.quota_bytes
            entry["quota"] = "unmetered" if quota is None else format_size(quota)
        if not config.enabled and config.disabled_reason == DisabledReason.OPERATOR:
            entry["enabled"] = False
        configurations.append(entry)
    policies: dict[str, Any] = {}
    dns: dict[str, Any] = {}
    for name, value in sorted(store.policies().items()):
        section, key = name.split(".", 1)
        if name == "usage.sync_interval":
            policies["sync_interval"] = json.loads(value)
        elif name == "dns.servers":  # the clients' DNS: policies.dns.servers
            policies.setdefault("dns", {})["servers"] = json.loads(value)
        elif section == "dns":  # the nodes' resolver upstream: the file's top-level dns
            dns[key] = json.loads(value)
        else:
            policies.setdefault(section, {})[key] = json.loads(value)
    document: dict[str, Any] = {"version": 1}
    for key, section_value in (
        ("ipv6", {"prefix": str(store.ipv6_prefix())}),
        ("nodes", nodes),
        ("plans", plans),
        ("policies", policies),
        ("dns", dns),
        ("accounts", accounts),
        ("configurations", configurations),
    ):
        if section_value:
            document[key] = section_value
    header = (
        "# wgfleet fleet file, exported from the store. Customers' accounts are not in it;\n"
        "# `wgfleet plan -f` on this file shows no changes.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


__all__ = [
    "ApplyResult",
    "FleetFileInvalid",
    "FleetFileRejected",
    "FleetPlan",
    "PlanRefused",
    "apply",
    "export",
    "load_saved_plan",
    "plan",
    "plan_read",
    "read_fleet_file",
]
