"""Accounts, configurations and top-ups: change the store, then push what changed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from orchestrator.adapters import passwords, wgkeys
from orchestrator.core.input_limits import MAX_BYTES
from orchestrator.core.models import Account, Configuration, DisabledReason, Plan, TopUp
from orchestrator.core.peers import (
    NAME_RE,
    USERNAME_RE,
    PoolExhausted,
    allocate_address,
    canonical_split_tunnel,
    next_name,
    render_client_config,
    routing_lines,
    split_tunnel_problem,
)
from orchestrator.core.quota import enforce, validity_after
from orchestrator.core.quoting import quote
from orchestrator.core.topup_batch import (
    AMOUNT_RE,
    INVOICE_RE,
    granted_total_problem,
    recorded_differences,
)
from orchestrator.errors import StoreError, UsageError
from orchestrator.service import notify
from orchestrator.service.context import Fleet, writes, writes_store
from orchestrator.service.privacy import check_contact
from orchestrator.service.push import (
    Change,
    PushResult,
    moved_by_one,
    not_pushed,
    push,
    record_change,
)
from orchestrator.service.retry import retry_conflicts
from orchestrator.service.usage import quota_statuses


@dataclass(frozen=True)
class NewConfiguration:
    configuration: Configuration
    # node -> wg-quick text with the client's private key: returned once, never stored,
    # left out of the repr (an assertion or a log line printing the result shows no key).
    client_configs: dict[str, str] = field(repr=False)
    push: PushResult


@writes
def add_account(
    fleet: Fleet, username: str, password: str, device_id: str, contact: str | None = None
) -> Account:
    if not USERNAME_RE.fullmatch(username):
        raise UsageError(
            f"username {quote(username)}: use lowercase letters, digits, '.', '_' or '-'"
        )
    if len(password) < 8:
        raise UsageError("password: at least 8 characters")
    if not device_id.strip():
        raise UsageError("device id: must not be empty")
    if len(device_id) > 255 or not device_id.isprintable():
        raise UsageError(f"device id {quote(device_id)}: at most 255 printable characters")
    check_contact(fleet.settings, contact, "--contact")
    account = Account(username, passwords.hash_password(password), device_id.strip(), contact)
    fleet.store.add_account(account)
    fleet.record(f"account {username} added")
    return account


def export_account(fleet: Fleet, username: str) -> dict[str, Any]:
    """Everything the store holds about an account (a user's right of access), as JSON-ready
    data: the account row, its configurations with their placements, usage totals, top-ups and
    the last-seen counters of its keys. Preshared keys are referenced (``psk_ref``), never
    included: they are secrets of the tunnel, kept outside the store. The password hash is
    described (held or not, its scheme), never given: a copy of it could be attacked offline."""
    records = fleet.store.account_records(username)
    (account,) = records.pop("accounts")
    if "password_hash" in account:
        account["password_hash"] = passwords.describe_hash(account["password_hash"] or "")
    return {"account": account, **records}


@dataclass(frozen=True)
class AccountDeletion:
    removed: list[Configuration]
    push: PushResult
    # The store's files hold nothing of the erased rows any more (False: another process held
    # an old snapshot of a SQLite store; `wgfleet db scrub` finishes it).
    scrubbed: bool


@writes
def delete_account(fleet: Fleet, username: str) -> AccountDeletion:
    """Erase the account, its configurations, usage and counters; remove its peers from every
    node; then scrub the store's files so the erased rows cannot be read back from them."""
    removed, moved = record_change(fleet.store, lambda: fleet.store.delete_account(username))
    removed, pushed = _forget(fleet, removed, moved)
    fleet.record(f"account {username} erased with {len(removed)} configuration(s)")
    return AccountDeletion(removed, pushed, fleet.store.scrub())


@writes
def add_configuration(
    fleet: Fleet,
    account: str,
    *,
    nodes: Iterable[str] | None,
    quota_bytes: int | None = None,
    plan: str | None = None,
    name: str | None = None,
    today: date | None = None,
    split_tunnel: str | None = None,
    push_now: bool = True,
) -> NewConfiguration:
    """New keys made here, the public half stored, the client's config returned once.

    ``push_now=False``: commit only; the nodes are pending (`PushResult.skipped`) for the push
    worker (service/push_worker.py), so a caller (the HTTP API) need not wait for them.

    ``split_tunnel``: networks (comma-separated) the client routes through the tunnel instead
    of everything; an explicit choice per configuration, kept through rotations."""
    if split_tunnel is not None:
        problem = split_tunnel_problem(split_tunnel)
        if problem is not None:
            raise UsageError(f"--split-tunnel {quote(split_tunnel)}: {problem}")
        split_tunnel = canonical_split_tunnel(split_tunnel)
    store = fleet.store
    all_nodes = {n.name: n for n in store.nodes()}
    chosen = sorted(all_nodes) if nodes is None else sorted(set(nodes))
    if not chosen:
        raise UsageError("no nodes: deploy nodes first, or name them with --nodes")
    missing = [n for n in chosen if n not in all_nodes]
    if missing:
        raise UsageError(f"--nodes: unknown node(s) {', '.join(missing)}")
    undeployed = [n for n in chosen if all_nodes[n].public_key is None]
    if undeployed:
        raise UsageError(
            f"node(s) {', '.join(undeployed)} have no WireGuard key yet: run `wgfleet deploy`"
        )
    if quota_bytes is not None and quota_bytes < 0:
        raise UsageError(f"--quota {quota_bytes}: must not be negative")
    plan_row = store.plan(plan) if plan is not None else None
    store.account(account)
    config_name = name or next_name(account, store.configuration_names(f"{account}-"))
    if not NAME_RE.fullmatch(config_name):
        raise UsageError(
            f"name {quote(config_name)}: use lowercase letters, digits, '.', '_' or '-'"
        )
    keys = wgkeys.new_keypair()
    preshared = wgkeys.new_preshared_key()
    with store.transaction():
        revisions = store.node_revisions()
        try:
            addresses = {
                n: allocate_address(all_nodes[n].tunnel_network, store.taken_addresses(n))
                for n in chosen
            }
        except PoolExhausted as exc:
            raise StoreError(str(exc)) from None
        psk_ref = fleet.secrets.put_psk(config_name, preshared)
        config = Configuration(
            name=config_name,
            account=account,
            public_key=keys.public_key,
            psk_ref=psk_ref,
            addresses=addresses,
            plan=plan,
            quota_bytes=quota_bytes,
            key_created_on=today or date.today(),
            psk_created_on=today or date.today(),
            # Activation starts a plan's validity.
            valid_until=validity_after(plan_row, None, today or date.today()) if plan_row else None,
            split_tunnel=split_tunnel,
        )
        store.add_configuration(config)  # with its sealed key, or neither
        moved = moved_by_one(revisions, store.node_revisions())
    client_configs = {
        n: render_client_config(
            private_key=keys.private_key,
            address=addresses[n],
            node=all_nodes[n],
            preshared_key=preshared,
            dns_servers=fleet.settings.network.dns_servers,
            split_tunnel=split_tunnel,
        )
        for n in chosen
    }
    added = store.configuration(config_name)
    pushed = (
        push(fleet, chosen, change=Change((), (added,), moved))
        if push_now
        else not_pushed(fleet, chosen)
    )
    fleet.record(f"configuration {added.name} added on {', '.join(added.nodes)}")
    return NewConfiguration(added, client_configs, pushed)


def client_lines(fleet: Fleet, config: Configuration) -> dict[str, list[str]]:
    """Per node, the Address, DNS and AllowedIPs lines of the configuration's client config
    (`peers show`): a client config made before IPv6 and DNS needs exactly these."""
    nodes = {n.name: n for n in fleet.store.nodes()}
    return routing_lines(config, nodes, fleet.settings.network.dns_servers)


@writes
def set_enabled(
    fleet: Fleet, names: Iterable[str], enabled: bool, reason: DisabledReason | None = None
) -> tuple[list[Configuration], PushResult]:
    names = list(names)
    if not enabled and reason is None:
        raise UsageError("disable needs a reason")
    reason = None if enabled else reason
    store = fleet.store
    changed, moved = record_change(store, lambda: store.set_enabled(names, enabled, reason))
    after = tuple(replace(c, enabled=enabled, disabled_reason=reason) for c in changed)
    change = Change(tuple(changed), after, moved)
    fleet.record(
        f"{'enabled' if enabled else 'disabled'}: {', '.join(c.name for c in changed) or 'nothing'}"
    )
    return changed, push(fleet, {n for c in changed for n in c.nodes}, change=change)


@writes
def remove_configurations(
    fleet: Fleet, names: Iterable[str]
) -> tuple[list[Configuration], PushResult]:
    names = list(names)
    removed, moved = record_change(fleet.store, lambda: fleet.store.remove_configurations(names))
    return _forget(fleet, removed, moved)


def drop_secrets(fleet: Fleet, removed: Iterable[Configuration]) -> None:
    """The preshared keys of configurations the store let go."""
    for config in removed:
        if config.psk_ref:
            fleet.secrets.delete(config.psk_ref)


def _forget(
    fleet: Fleet, removed: list[Configuration], moved: dict[str, tuple[int, int]]
) -> tuple[list[Configuration], PushResult]:
    """After the store let configurations go: drop their preshared keys, take them off nodes
    (``moved``: the revisions the removal moved, see `record_change`)."""
    drop_secrets(fleet, removed)
    change = Change(tuple(removed), (), moved)
    fleet.record(f"removed: {', '.join(c.name for c in removed) or 'nothing'}")
    return removed, push(fleet, {n for c in removed for n in c.nodes}, change=change)


class TopUpConflict(UsageError):
    """An invoice already recorded with other fields (exit 2): nothing was granted."""


@writes_store
def topup(
    fleet: Fleet,
    configuration: str,
    *,
    invoice: str,
    amount: str,
    bytes_granted: int | None = None,
    plan: str | None = None,
    today: date | None = None,
) -> tuple[TopUp, bool]:
    """Grant quota once per invoice: the same purchase again grants nothing and says so; the
    same invoice with another configuration, amount or byte count is a TopUpConflict.

    A store-only change (no node is reached, no fleet lock needed: see `writes_store`): one
    transaction holding the configuration's row. A configuration the quota or its validity cut
    off that the purchase lets back is re-enabled in the same transaction; its nodes are then
    pending (`service.push.pending_nodes`) until a push (the push worker, the next sync)."""
    if not INVOICE_RE.fullmatch(invoice):
        raise UsageError(f"--invoice {quote(invoice)}: letters, digits and . _ / - only")
    if not AMOUNT_RE.fullmatch(amount):
        raise UsageError(f"--amount {quote(amount)}: a decimal number such as 4.99")
    if (bytes_granted is None) == (plan is None):
        raise UsageError("give exactly one of --bytes or --plan")
    if bytes_granted is not None and not 0 <= bytes_granted <= MAX_BYTES:
        raise UsageError(f"--bytes {quote(bytes_granted)}: 0 to {MAX_BYTES}")
    store = fleet.store
    bought = store.plan(plan) if plan is not None else None
    granted = bought.quota_bytes if bought is not None else bytes_granted
    assert granted is not None
    day = today or date.today()
    return retry_conflicts(
        lambda: _grant(fleet, configuration, invoice, amount, granted, bought, plan, day)
    )


def _grant(
    fleet: Fleet,
    configuration: str,
    invoice: str,
    amount: str,
    granted: int,
    bought: Plan | None,
    plan: str | None,
    day: date,
) -> tuple[TopUp, bool]:
    store = fleet.store
    with store.transaction():
        store.hold_configurations([configuration])
        current = store.configuration(configuration)
        earlier = store.topup(invoice)
        if earlier is not None:
            differs = recorded_differences(earlier, configuration, amount, granted)
            if differs:
                raise TopUpConflict(
                    f"invoice {invoice} was recorded before with {', '.join(differs)}; "
                    "nothing granted"
                )
            return earlier, False
        holding = store.running_totals().granted.get(configuration, 0)
        problem = granted_total_problem(holding, granted)
        if problem is not None:
            given = f"--plan {plan}" if plan else f"--bytes {granted}"
            raise UsageError(f"{given}: {problem}; nothing granted")
        recorded, new = store.add_topup(TopUp(invoice, configuration, amount, granted, day))
        if new and bought is not None:
            # Buying a plan again renews it: its validity runs on from the current one.
            until = validity_after(bought, current.valid_until, day)
            if until is not None:
                store.set_valid_until(configuration, until)
        if new:
            let_back_in(fleet, [configuration], day)
    return recorded, new


def let_back_in(fleet: Fleet, names: list[str], today: date) -> list[str]:
    """In the caller's transaction: re-enable those of ``names`` that the quota or validity
    cut off and that their top-ups now let back (the sync's own rule, core.quota.enforce);
    their nodes become pending. Return the names re-enabled."""
    store = fleet.store
    configurations = store.configurations(names=names, placements=False)
    cut_off = [c for c in configurations if not c.enabled]
    if not cut_off:
        return []
    decision = enforce(cut_off, quota_statuses(fleet, today, cut_off), 1.0, today)
    if not decision.enable:
        return []
    changed = store.set_enabled(decision.enable, True, None)
    notify.queue(fleet, "re_enabled", [c.name for c in changed])
    for config in changed:
        fleet.record(f"{config.name} re-enabled by a top-up; pending on {', '.join(config.nodes)}")
    return [c.name for c in changed]
