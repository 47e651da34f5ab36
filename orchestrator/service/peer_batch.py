"""Many configurations in one go (`wgfleet peers add --from FILE`, the API's batch request).

Every row is checked first (core.peer_batch, then against the store: accounts, plans, nodes,
names); all configurations are then made in ONE store transaction, so a bad row, a full
tunnel pool or a crash leaves the store as it was; and the nodes get ONE push each, carrying
every configuration placed on them, instead of one push per configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from orchestrator.adapters import wgkeys
from orchestrator.core.models import Configuration, Node
from orchestrator.core.peer_batch import BadRow, BatchRow, parse_peer_batch
from orchestrator.core.peers import (
    PoolExhausted,
    allocate_address,
    canonical_split_tunnel,
    next_name,
    render_client_config,
    split_tunnel_problem,
)
from orchestrator.core.quota import validity_after
from orchestrator.core.quoting import sanitize
from orchestrator.errors import UsageError
from orchestrator.service.context import Fleet, writes
from orchestrator.service.push import Change, PushResult, moved_by_one, not_pushed, push


class BatchRefused(UsageError):
    """A row of the batch cannot be made (exit 2): nothing was made."""

    def __init__(self, source: str, problem: BadRow) -> None:
        self.problem = problem
        super().__init__(f"{sanitize(source, 300)}: {problem}; nothing made")


@dataclass(frozen=True)
class BatchConfiguration:
    configuration: Configuration
    # node -> wg-quick text with the client's private key: handed out once, never stored,
    # left out of the repr.
    client_configs: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class BatchCreated:
    created: tuple[BatchConfiguration, ...]
    push: PushResult

    def as_dict(self) -> dict[str, Any]:
        return {
            "configurations": [
                {
                    "name": c.configuration.name,
                    "account": c.configuration.account,
                    "nodes": list(c.configuration.nodes),
                }
                for c in self.created
            ],
            "push": self.push.as_dict(),
        }


@dataclass(frozen=True)
class _Planned:
    """A checked row with everything it needs but its addresses (made in the transaction)."""

    row: BatchRow
    name: str
    nodes: tuple[str, ...]
    split_tunnel: str | None
    keys: wgkeys.KeyPair = field(repr=False)
    preshared: str = field(repr=False)


def _plan_rows(fleet: Fleet, rows: Sequence[BatchRow], source: str) -> list[_Planned]:
    """Each row checked against the store (read in the caller's transaction)."""
    store = fleet.store
    nodes = {n.name: n for n in store.nodes()}
    deployed = sorted(n for n, node in nodes.items() if node.public_key is not None)
    accounts = {a.username for a in store.accounts()}
    plans = {p.name for p in store.plans()}
    taken: dict[str, set[str]] = {}
    planned = []

    def refuse(row: BatchRow, field_name: str, value: object, problem: str) -> BatchRefused:
        return BatchRefused(source, BadRow(row.row, row.line, field_name, value, problem))

    for row in rows:
        if row.account not in accounts:
            raise refuse(row, "account", row.account, "no such account")
        if row.plan is not None and row.plan not in plans:
            raise refuse(row, "plan", row.plan, "no such plan")
        chosen = tuple(deployed) if row.nodes is None else row.nodes
        if not chosen:
            raise refuse(row, "nodes", "all", "no deployed nodes: run `wgfleet deploy`")
        for name in chosen:
            if name not in nodes:
                raise refuse(row, "nodes", name, "no such node")
            if nodes[name].public_key is None:
                raise refuse(row, "nodes", name, "no WireGuard key yet: run `wgfleet deploy`")
        split = row.split_tunnel
        if split is not None:
            problem = split_tunnel_problem(split)
            if problem is not None:
                raise refuse(row, "split_tunnel", split, problem)
            split = canonical_split_tunnel(split)
        names = taken.setdefault(row.account, store.configuration_names(f"{row.account}-"))
        if row.name is not None:
            if row.name in names or store.configuration_names(row.name) >= {row.name}:
                raise refuse(row, "name", row.name, "a configuration of that name exists")
            name = row.name
        else:
            name = next_name(row.account, names)
        names.add(name)
        planned.append(
            _Planned(row, name, chosen, split, wgkeys.new_keypair(), wgkeys.new_preshared_key())
        )
    # A named row taking a name an earlier row was given by default.
    given: dict[str, int] = {}
    for item in planned:
        if item.name in given:
            raise refuse(item.row, "name", item.name, f"given to row {given[item.name]} too")
        given[item.name] = item.row.row
    return planned


@writes
def add_configurations(
    fleet: Fleet, text: str, source: str, *, today: date | None = None, push_now: bool = True
) -> BatchCreated:
    """Make every configuration of the batch ``text`` (read from ``source``) or none, then
    push each node they are placed on once. ``push_now=False``: commit only; the nodes are
    pending (`PushResult.skipped`) for the push worker (service/push_worker.py)."""
    try:
        rows = parse_peer_batch(text)
    except BadRow as exc:
        raise BatchRefused(source, exc) from None
    store = fleet.store
    day = today or date.today()
    plans = {p.name: p for p in store.plans()}
    with store.transaction():
        planned = _plan_rows(fleet, rows, source)
        nodes = {n.name: n for n in store.nodes()}
        revisions = store.node_revisions()
        free: dict[str, set[Any]] = {}
        made: list[tuple[_Planned, Configuration]] = []
        for item in planned:
            addresses = {}
            for name in item.nodes:
                used = free.setdefault(name, set(store.taken_addresses(name)))
                try:
                    addresses[name] = allocate_address(nodes[name].tunnel_network, used)
                except PoolExhausted as exc:
                    raise BatchRefused(
                        source,
                        BadRow(item.row.row, item.row.line, "nodes", name, str(exc)),
                    ) from None
                used.add(addresses[name])
            # Sealed in the same transaction: a refused batch leaves no key behind.
            psk_ref = fleet.secrets.put_psk(item.name, item.preshared)
            plan = plans.get(item.row.plan) if item.row.plan else None
            config = Configuration(
                name=item.name,
                account=item.row.account,
                public_key=item.keys.public_key,
                psk_ref=psk_ref,
                addresses=addresses,
                plan=item.row.plan,
                quota_bytes=item.row.quota_bytes,
                key_created_on=day,
                psk_created_on=day,
                valid_until=validity_after(plan, None, day) if plan else None,
                split_tunnel=item.split_tunnel,
            )
            store.add_configuration(config)
            made.append((item, config))
        moved = moved_by_one(revisions, store.node_revisions())
        added = {c.name: c for c in store.configurations(names=[c.name for _, c in made])}
    created = tuple(
        BatchConfiguration(added[config.name], _client_configs(fleet, item, config, nodes))
        for item, config in made
    )
    touched = sorted({n for _, config in made for n in config.addresses})
    after = tuple(c.configuration for c in created)
    pushed = (
        push(fleet, touched, change=Change((), after, moved))
        if push_now
        else not_pushed(fleet, touched)
    )
    fleet.record(f"{len(created)} configuration(s) added from {sanitize(source, 200)}")
    return BatchCreated(created, pushed)


def _client_configs(
    fleet: Fleet, item: _Planned, config: Configuration, nodes: dict[str, Node]
) -> dict[str, str]:
    return {
        name: render_client_config(
            private_key=item.keys.private_key,
            address=config.addresses[name],
            node=nodes[name],
            preshared_key=item.preshared,
            dns_servers=fleet.settings.network.dns_servers,
            split_tunnel=item.split_tunnel,
        )
        for name in sorted(config.addresses)
    }
