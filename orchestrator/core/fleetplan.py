"""What applying a fleet file would change, as plain data: the diff behind `wgfleet plan`.

The file is the truth for what it declares: its nodes, its plans, its accounts and the
configurations of those accounts (site links, operator access). Customers' accounts and their
configurations are not in the file and are never touched by it. Overdue keys are listed too:
applying does not rotate them, but a plan should not hide them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.core.fleetfile import FleetFile, NodeSpec, Policies
from orchestrator.core.models import Account, Configuration, DisabledReason, Node, Plan
from orchestrator.core.node_protocol import WIREGUARD_PORT

# Accounts a fleet file creates cannot log in: they hold site links and operator access, and
# this mark is how a later plan knows the file manages them (and may remove them).
MANAGED_PASSWORD = "!"  # noqa: S105 - not a password: the mark of a login that cannot work


@dataclass(frozen=True)
class Change:
    kind: str  # node, plan, account, configuration, key
    action: str  # add, change, remove, deploy, overdue
    subject: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    @property
    def is_change(self) -> bool:
        """Overdue keys are reported, not changed."""
        return self.action != "overdue"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FleetState:
    """The store's side of the comparison, read once."""

    nodes: tuple[Node, ...]
    plans: tuple[Plan, ...]
    accounts: tuple[Account, ...]  # those the file declares, and those a file made earlier
    configurations: tuple[Configuration, ...]  # of those accounts
    overdue_keys: tuple[str, ...] = ()  # "kind subject", from the key policy
    all_configurations: tuple[Configuration, ...] = ()  # every one, to see who uses a plan
    node_vars: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # inventory hosts
    policies: Mapping[str, Any] = field(default_factory=dict)  # applied from a fleet file
    ipv6_prefix: str | None = None  # the store's IPv6 tunnel prefix
    nodes_with_network6: int = 0  # nodes (or inventory hosts) that already have their /64

    def fingerprint(self) -> str:
        """Changes when anything a plan was computed from changes (for --plan-file)."""
        data = {
            "nodes": sorted(
                (n.name, n.listen_port, str(n.tunnel_network), n.public_key is not None)
                for n in self.nodes
            ),
            "node_settings": {k: node_settings(v) for k, v in self.node_vars.items()},
            "policies": dict(self.policies),
            "ipv6_prefix": self.ipv6_prefix,
            "plans": {p.name: _plan_fields(p) for p in self.plans},
            "accounts": {a.username: _account_fields(a) for a in self.accounts},
            "configurations": {c.name: _config_fields(c) for c in self.configurations},
        }
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plan_fields(plan: Plan) -> dict[str, Any]:
    return {
        "quota_bytes": plan.quota_bytes,
        "reset": str(plan.reset),
        "anchor_day": plan.anchor_day,
        "price": plan.price,
        **({"validity_days": plan.validity_days} if plan.validity_days else {}),
        **({"valid_until": plan.valid_until.isoformat()} if plan.valid_until else {}),
    }


def _account_fields(account: Account) -> dict[str, Any]:
    return {"device_id": account.device_id, "contact": account.contact}


def _config_fields(config: Configuration) -> dict[str, Any]:
    return {
        "account": config.account,
        "nodes": list(config.nodes),
        "public_key": config.public_key,
        "plan": config.plan,
        "quota_bytes": config.quota_bytes,
        # Only an operator's disable is declared; over quota or expired is the fleet's doing.
        "enabled": config.enabled or config.disabled_reason != DisabledReason.OPERATOR,
    }


def _diff(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = sorted(k for k in after if before.get(k) != after.get(k))
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def managed_nodes(fleet: FleetFile, state: FleetState) -> list[str]:
    """The nodes a file speaks for: those it lists, else every host of its inventory."""
    if fleet.nodes:
        return [n.name for n in fleet.nodes]
    return sorted(state.node_vars) if fleet.inventory is not None else []


def node_settings(variables: Mapping[str, Any]) -> dict[str, Any]:
    """What a deploy would give a node, from its inventory variables (roles' defaults filled)."""
    return {
        "port": int(variables.get("wireguard_port", WIREGUARD_PORT)),
        "tunnel_network": str(variables.get("wgfleet_tunnel_network")),
        "implementation": str(variables.get("wireguard_implementation", "kernel")),
        "ipv6_egress": str(variables.get("wireguard_ipv6_egress", "nat66")),
        "client_endpoint": str(variables.get("wgfleet_client_endpoint", "ipv4")),
    }


def policy_values(policies: Policies) -> dict[str, Any]:
    """A file's policies by the dotted names the store keeps them under."""
    values = {f"keys.{k}": v for k, v in policies.keys.items()}
    values.update({f"usage.{k}": v for k, v in policies.usage.items()})
    values.update({f"privacy.{k}": v for k, v in policies.privacy.items()})
    if policies.sync_interval is not None:
        values["usage.sync_interval"] = policies.sync_interval
    if policies.dns_servers is not None:
        values["dns.servers"] = list(policies.dns_servers)
    values.update({f"dns.{k}": v for k, v in policies.dns.items()})
    return values


def plan_changes(fleet: FleetFile, state: FleetState) -> list[Change]:
    changes: list[Change] = []
    stored_nodes = {n.name: n for n in state.nodes}
    specs = {n.name: n for n in fleet.nodes}
    for name in managed_nodes(fleet, state):
        spec = specs.get(name) or NodeSpec(name)
        wanted = {
            k: v
            for k, v in {
                "port": spec.port,
                "tunnel_network": spec.tunnel_network,
                "implementation": spec.implementation,
                "ipv6_egress": spec.ipv6_egress,
                "client_endpoint": spec.client_endpoint,
            }.items()
            if v is not None
        }
        node = stored_nodes.get(name)
        if node is None or node.public_key is None:
            changes.append(Change("node", "deploy", name, {}, {"deployed": True, **wanted}))
            continue
        current = node_settings(state.node_vars.get(name, {}))
        current["tunnel_network"] = str(node.tunnel_network)
        # The store knows the port a node listens on; a node key rotation moves it between
        # the base port and base + 1, and either means the file's base port is in force.
        port = spec.port
        in_force = port is not None and node.listen_port in (port, port + 1)
        current["port"] = port if in_force else node.listen_port
        before, after = _diff(current, wanted)
        if after:
            changes.append(Change("node", "change", name, before, after))

    if fleet.ipv6_prefix is not None and fleet.ipv6_prefix != state.ipv6_prefix:
        changes.append(
            Change(
                "ipv6",
                "change",
                "prefix",
                {"prefix": state.ipv6_prefix},
                {"prefix": fleet.ipv6_prefix},
            )
        )

    wanted_policies = policy_values(fleet.policies)
    for name in sorted(set(wanted_policies) | set(state.policies)):
        if name not in wanted_policies:
            changes.append(Change("policy", "remove", name, {"value": state.policies[name]}, {}))
        elif name not in state.policies:
            changes.append(Change("policy", "add", name, {}, {"value": wanted_policies[name]}))
        elif state.policies[name] != wanted_policies[name]:
            before_value = {"value": state.policies[name]}
            changes.append(
                Change("policy", "change", name, before_value, {"value": wanted_policies[name]})
            )

    stored_plans = {p.name: p for p in state.plans}
    file_plans = {p.name for p in fleet.plans}
    for plan_spec in fleet.plans:
        after = {
            "quota_bytes": plan_spec.quota_bytes,
            "reset": plan_spec.reset,
            "anchor_day": plan_spec.anchor_day,
            "price": plan_spec.price,
        }
        # Validity shows only where it is set, in the file or in the store (so a file that
        # drops it shows the change to null, and plans without one look as they always did).
        stored_fields = (
            _plan_fields(stored_plans[plan_spec.name]) if plan_spec.name in stored_plans else {}
        )
        for key, value in (
            ("validity_days", plan_spec.validity_days),
            ("valid_until", plan_spec.valid_until),
        ):
            if value is not None or stored_fields.get(key) is not None:
                after[key] = value
        if plan_spec.name not in stored_plans:
            changes.append(Change("plan", "add", plan_spec.name, {}, after))
            continue
        before_fields, after_fields = _diff(_plan_fields(stored_plans[plan_spec.name]), after)
        if after_fields:
            changes.append(Change("plan", "change", plan_spec.name, before_fields, after_fields))
    for name in sorted(set(stored_plans) - file_plans):
        changes.append(Change("plan", "remove", name, _plan_fields(stored_plans[name]), {}))

    stored_accounts = {a.username: a for a in state.accounts}
    declared = {a.username for a in fleet.accounts}
    for username in sorted(set(stored_accounts) - declared):
        account = stored_accounts[username]
        if account.password_hash == MANAGED_PASSWORD:
            changes.append(Change("account", "remove", username, _account_fields(account), {}))
    for account_spec in fleet.accounts:
        username = account_spec.username
        after = {"device_id": account_spec.device_id, "contact": account_spec.contact}
        if username not in stored_accounts:
            changes.append(Change("account", "add", username, {}, after))
            continue
        before_fields, after_fields = _diff(_account_fields(stored_accounts[username]), after)
        if after_fields:
            changes.append(Change("account", "change", username, before_fields, after_fields))

    stored_configs = {c.name: c for c in state.configurations}
    file_configs = {c.name for c in fleet.configurations}
    for config_spec in fleet.configurations:
        after = {
            "account": config_spec.account,
            "nodes": list(config_spec.nodes),
            "public_key": config_spec.public_key,
            "plan": config_spec.plan,
            "quota_bytes": config_spec.quota_bytes,
            "enabled": config_spec.enabled,
        }
        name = config_spec.name
        if name not in stored_configs:
            changes.append(Change("configuration", "add", name, {}, after))
            continue
        before_fields, after_fields = _diff(_config_fields(stored_configs[name]), after)
        if after_fields:
            changes.append(Change("configuration", "change", name, before_fields, after_fields))
    for name in sorted(set(stored_configs) - file_configs):
        changes.append(
            Change("configuration", "remove", name, _config_fields(stored_configs[name]), {})
        )

    for key in state.overdue_keys:
        changes.append(Change("key", "overdue", key))
    return changes


def plan_problems(fleet: FleetFile, state: FleetState, changes: Iterable[Change]) -> list[str]:
    """Changes the store would refuse: said at plan time, not halfway through an apply."""
    problems = []
    removed_plans = {c.subject for c in changes if c.kind == "plan" and c.action == "remove"}
    users: dict[str, list[str]] = {}
    for config in state.all_configurations:
        if config.plan:
            users.setdefault(config.plan, []).append(config.name)
    for name in sorted(removed_plans):
        if users.get(name):
            problems.append(
                f"plans.{name}: missing from the file but used by {', '.join(users[name])}"
            )
    problems += _node_problems(fleet, state)
    moved6 = fleet.ipv6_prefix is not None and fleet.ipv6_prefix != state.ipv6_prefix
    if moved6 and state.nodes_with_network6:
        problems.append(
            f"ipv6.prefix: {fleet.ipv6_prefix} would move the IPv6 addresses of "
            f"{state.nodes_with_network6} node(s) with a /64 in {state.ipv6_prefix}; the prefix "
            "is fixed once nodes have their /64"
        )
    known_nodes = set(state.node_vars) | {n.name for n in state.nodes}
    for spec in fleet.configurations:
        unknown = [n for n in spec.nodes if n not in known_nodes]
        if unknown:
            problems.append(
                f"configurations.{spec.name}.nodes: {', '.join(unknown)} is neither in the "
                "inventory nor in the store"
            )
    return problems


def _node_problems(fleet: FleetFile, state: FleetState) -> list[str]:
    """Node settings a deploy cannot make true: the inventory says how nodes are reached."""
    problems = []
    for spec in fleet.nodes:
        variables = state.node_vars.get(spec.name)
        if variables is None:
            problems.append(
                f"nodes.{spec.name}: not in the inventory (it says how to reach the node)"
            )
            continue
        reach = str(variables.get("ansible_host", spec.name))
        if spec.address is not None and spec.address != reach:
            problems.append(
                f"nodes.{spec.name}.address: {spec.address} but the inventory reaches it at "
                f"{reach}; change the inventory, it holds how nodes are reached"
            )
        stored = next((n for n in state.nodes if n.name == spec.name), None)
        on_node = [c.name for c in state.all_configurations if spec.name in c.nodes]
        network = spec.tunnel_network
        moved = stored is not None and network not in (None, str(stored.tunnel_network))
        if moved and on_node and stored is not None:
            problems.append(
                f"nodes.{spec.name}.tunnel_network: {network} would strand the addresses "
                f"of {len(on_node)} configuration(s) in {stored.tunnel_network}"
            )
    return problems


def render_plan(changes: list[Change]) -> str:
    """The readable diff: one line per change, then its fields as `-` before and `+` after."""
    signs = {"add": "+", "remove": "-", "change": "~", "deploy": "^", "overdue": "!"}
    lines = []
    for change in changes:
        lines.append(f"{signs[change.action]} {change.kind} {change.subject} ({change.action})")
        for key in sorted(set(change.before) | set(change.after)):
            if key in change.before and change.action != "add":
                lines.append(f"    - {key}: {json.dumps(change.before[key], default=str)}")
            if key in change.after and change.action != "remove":
                lines.append(f"    + {key}: {json.dumps(change.after[key], default=str)}")
    count = sum(1 for c in changes if c.is_change)
    lines.append(f"{count} change(s)" if count else "no changes")
    return "\n".join(lines) + "\n"
