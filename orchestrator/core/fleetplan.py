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
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.fleetfile import FleetFile
from orchestrator.core.models import Account, Configuration, Node, Plan


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
        return {
            "kind": self.kind,
            "action": self.action,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class FleetState:
    """The store's side of the comparison, read once."""

    nodes: tuple[Node, ...]
    plans: tuple[Plan, ...]
    accounts: tuple[Account, ...]
    configurations: tuple[Configuration, ...]  # of the accounts the file declares
    overdue_keys: tuple[str, ...] = ()  # "kind subject", from the key policy
    all_configurations: tuple[Configuration, ...] = ()  # every one, to see who uses a plan

    def fingerprint(self) -> str:
        """Changes when anything a plan was computed from changes (for --plan-file)."""
        data = {
            "nodes": sorted((n.name, n.listen_port, n.interface) for n in self.nodes),
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
        "enabled": config.enabled,
    }


def _diff(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = sorted(k for k in after if before.get(k) != after.get(k))
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def plan_changes(fleet: FleetFile, state: FleetState) -> list[Change]:
    changes: list[Change] = []
    stored_nodes = {n.name: n for n in state.nodes}
    for spec in fleet.nodes:
        node = stored_nodes.get(spec.name)
        wanted = {
            k: v
            for k, v in {"port": spec.port, "implementation": spec.implementation}.items()
            if v is not None
        }
        if node is None or node.public_key is None:
            changes.append(Change("node", "deploy", spec.name, {}, {"deployed": True, **wanted}))
            continue
        # A node key rotation moves a node between its two ports: the base port in the file is
        # still right when the node listens on base + 1.
        port = spec.port
        if port is not None and node.listen_port not in (port, port + 1):
            changes.append(
                Change("node", "deploy", spec.name, {"port": node.listen_port}, {"port": port})
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
        if plan_spec.name not in stored_plans:
            changes.append(Change("plan", "add", plan_spec.name, {}, after))
            continue
        before_fields, after_fields = _diff(_plan_fields(stored_plans[plan_spec.name]), after)
        if after_fields:
            changes.append(Change("plan", "change", plan_spec.name, before_fields, after_fields))
    for name in sorted(set(stored_plans) - file_plans):
        changes.append(Change("plan", "remove", name, _plan_fields(stored_plans[name]), {}))

    stored_accounts = {a.username: a for a in state.accounts}
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
    known_nodes = {n.name for n in state.nodes} | {n.name for n in fleet.nodes}
    for spec in fleet.configurations:
        unknown = [n for n in spec.nodes if n not in known_nodes]
        if unknown:
            problems.append(
                f"configurations.{spec.name}.nodes: {', '.join(unknown)} is neither in the file "
                "nor in the store"
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
