"""What the UIs list and show: accounts, configurations, plans and nodes, read in one session.

The CLI's `list`/`show` commands, the TUI's pickers and the Python API read these instead of
the store; each result's ``as_dict()`` is the command's ``--json`` output. Plans are written
here too (a plan is catalogue data: no node hears of it until a configuration uses it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from orchestrator.core.models import (
    Account,
    Configuration,
    Operation,
    Plan,
    TopUp,
    UsageTotal,
)
from orchestrator.service.context import Fleet, writes


@dataclass(frozen=True)
class AccountListing:
    account: Account
    configurations: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "username": self.account.username,
            "device_id": self.account.device_id,
            "contact": self.account.contact,
            "configurations": self.configurations,
        }


def accounts(fleet: Fleet, search: str | None = None) -> list[AccountListing]:
    """Accounts whose username holds ``search`` (all without), with their configurations."""
    found = fleet.store.accounts(search)
    counts = fleet.store.configuration_counts()
    return [AccountListing(a, counts.get(a.username, 0)) for a in found]


def configurations(
    fleet: Fleet,
    *,
    account: str | None = None,
    node: str | None = None,
    enabled: bool | None = None,
) -> list[Configuration]:
    """Configurations, optionally of one account, on one node, or in one state."""
    return fleet.store.configurations(account=account, node=node, enabled=enabled)


def configuration_nodes(fleet: Fleet, name: str) -> tuple[str, ...]:
    """The nodes a configuration is placed on (a name the store lacks is NotFound)."""
    return tuple(fleet.store.configuration(name).nodes)


@dataclass(frozen=True)
class ConfigurationDetail:
    configuration: Configuration
    topups: tuple[TopUp, ...]
    usage: tuple[UsageTotal, ...]


def configuration_detail(fleet: Fleet, name: str) -> ConfigurationDetail:
    """One configuration with its top-ups and its usage totals."""
    return ConfigurationDetail(
        fleet.store.configuration(name),
        tuple(fleet.store.topups(name)),
        tuple(fleet.store.usage(name)),
    )


def plans(fleet: Fleet) -> list[Plan]:
    return fleet.store.plans()


@writes
def set_plan(fleet: Fleet, plan: Plan) -> None:
    """Create or change a plan."""
    fleet.store.upsert_plan(plan)
    fleet.record(f"plan {plan.name} saved")


def node_names(fleet: Fleet) -> list[str]:
    return sorted(fleet.nodes())


@dataclass(frozen=True)
class NodeListing:
    name: str
    address: str
    tunnel_network: str
    public_key: str | None
    key_created_on: date | None
    configurations: int
    pending: bool  # the store holds changes the node has not taken yet

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def nodes(fleet: Fleet) -> list[NodeListing]:
    """Every node the store knows, with its configurations and whether a push is pending."""
    known = fleet.store.nodes()
    revisions = fleet.store.node_revisions()
    counts = fleet.store.placement_counts()
    return [
        NodeListing(
            n.name,
            n.address,
            str(n.tunnel_network),
            n.public_key,
            n.key_created_on,
            counts.get(n.name, 0),
            revisions[n.name][0] != revisions[n.name][1],
        )
        for n in known
    ]


def operations(fleet: Fleet, limit: int = 50) -> list[Operation]:
    """The newest writing sessions of every controller sharing this store, newest first."""
    return fleet.store.operations(limit)


def granted_configurations(fleet: Fleet) -> int:
    """How many configurations the store keeps a running granted total for."""
    return len(fleet.store.running_totals().granted)


@writes
def scrub_store(fleet: Fleet) -> bool:
    """Make erased rows unrecoverable from the store's files; False: an old snapshot is held."""
    done = fleet.store.scrub()
    fleet.record("store scrubbed" if done else "store scrub deferred: an old snapshot is held")
    return done
