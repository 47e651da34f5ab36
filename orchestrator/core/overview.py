"""Read models for an operator's screens: one plain row per configuration, node and account.

Pure: built from the store's records and quota statuses, filtered and sorted in memory, so a
terminal UI can redraw thousands of rows without asking the store again. Nothing here carries a
time of user activity; the only dates are key creation and billing periods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from orchestrator.core.models import Account, Configuration, DisabledReason, Node, TopUp
from orchestrator.core.quota import QuotaStatus
from orchestrator.core.units import human_bytes


def quota_bar(used: int, allowance: int | None, width: int = 10) -> str:
    """A text bar of ``width`` cells: full at or over the allowance, dots when unmetered."""
    if allowance is None:
        return "·" * width
    if allowance <= 0:
        filled = width
    else:
        filled = min(width, (used * width + allowance - 1) // allowance) if used > 0 else 0
    return "█" * filled + "░" * (width - filled)


def percent(used: int, allowance: int | None) -> str:
    if allowance is None:
        return "-"
    if allowance <= 0:
        return "100%" if used >= allowance else "0%"
    return f"{min(999, used * 100 // allowance)}%"


# --- configurations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigurationRow:
    name: str
    account: str
    nodes: tuple[str, ...]
    enabled: bool
    disabled_reason: DisabledReason | None
    plan: str | None
    used: int  # this billing period
    allowance: int | None  # None: unmetered
    valid_until: date | None = None  # the last day its plan is valid (None: no end)

    @property
    def over(self) -> bool:
        return self.allowance is not None and self.used >= self.allowance

    @property
    def status(self) -> str:
        if self.enabled:
            return "enabled, over quota" if self.over else "enabled"
        reason = self.disabled_reason.value.replace("_", " ") if self.disabled_reason else "?"
        return f"disabled: {reason}"

    @property
    def ratio(self) -> float:
        if self.allowance is None:
            return -1.0  # unmetered sorts below every metered configuration
        return float("inf") if self.allowance <= 0 else self.used / self.allowance

    def usage(self, bar_width: int = 10, *, compact: bool = False) -> str:
        bar = quota_bar(self.used, self.allowance, bar_width)
        if compact:
            return f"{bar} {percent(self.used, self.allowance):>4}"
        if self.allowance is None:
            return f"{bar} {human_bytes(self.used)} (unmetered)"
        return f"{bar} {human_bytes(self.used)} / {human_bytes(self.allowance)}"

    @cached_property
    def search_text(self) -> str:
        return " ".join(
            (self.name, self.account, ",".join(self.nodes), self.status, self.plan or "")
        ).lower()


def configuration_rows(
    configurations: Iterable[Configuration], statuses: Mapping[str, QuotaStatus]
) -> list[ConfigurationRow]:
    rows = []
    for c in configurations:
        status = statuses.get(c.name)
        rows.append(
            ConfigurationRow(
                name=c.name,
                account=c.account,
                nodes=c.nodes,
                enabled=c.enabled,
                disabled_reason=c.disabled_reason,
                plan=c.plan,
                used=status.used if status else 0,
                allowance=status.allowance if status else None,
                valid_until=c.valid_until,
            )
        )
    return rows


def filter_rows(rows: Sequence[Any], query: str, text: Callable[[Any], str]) -> list[Any]:
    """The rows whose ``text`` (lowercase) holds every whitespace-separated term of ``query``,
    case-insensitively; all of them for an empty query."""
    terms = query.lower().split()
    if not terms:
        return list(rows)
    return [r for r in rows if all(term in text(r) for term in terms)]


CONFIGURATION_SORTS: dict[str, Callable[[ConfigurationRow], Any]] = {
    "name": lambda r: r.name,
    "account": lambda r: (r.account, r.name),
    "nodes": lambda r: (r.nodes, r.name),
    "usage": lambda r: (r.ratio, r.used, r.name),
    "status": lambda r: (r.status, r.name),
}


def sort_rows(
    rows: Sequence[Any], keys: Mapping[str, Callable[[Any], Any]], column: str, reverse: bool
) -> list[Any]:
    return sorted(rows, key=keys[column], reverse=reverse)


# --- nodes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRow:
    name: str
    address: str
    key_age_days: int | None  # None: no WireGuard key recorded yet (not deployed)
    peers_enabled: int
    peers_total: int
    pending_push: bool
    last_push_ok: bool | None  # None: never pushed
    last_sync_ok: bool | None  # None: never synced
    last_audit_ok: bool | None = None  # None: never audited
    last_sync_at: int | None = None  # unix seconds of its last good sync (a node's time)

    @property
    def reachable(self) -> bool | None:
        """From the last push and sync: no if either failed, yes if one worked, else unknown."""
        seen = [s for s in (self.last_push_ok, self.last_sync_ok) if s is not None]
        if not seen:
            return None
        return all(seen)


@dataclass(frozen=True)
class FleetTotals:
    nodes: int
    configurations: int
    enabled: int
    over_quota: int
    bytes_this_period: int
    pending_nodes: int


@dataclass(frozen=True)
class FleetOverview:
    nodes: tuple[NodeRow, ...]
    totals: FleetTotals
    # node -> bytes per day, oldest first, one entry per day of the window (0 on quiet days);
    # None when the privacy profile keeps no daily totals.
    daily: Mapping[str, tuple[int, ...]] | None = None


CHART_DAYS = 30


def daily_series(
    kept: Mapping[str, Iterable[tuple[date, int]]], nodes: Iterable[str], today: date
) -> dict[str, tuple[int, ...]]:
    """Each node's last CHART_DAYS days as a dense series, ending today."""
    start = today - timedelta(days=CHART_DAYS - 1)
    series = {}
    for node in nodes:
        by_day = dict(kept.get(node, ()))
        series[node] = tuple(by_day.get(start + timedelta(days=i), 0) for i in range(CHART_DAYS))
    return series


def node_rows(
    nodes: Iterable[Node],
    configurations: Iterable[Configuration],
    pending: Iterable[str],
    health: Mapping[str, tuple[bool | None, bool | None]],
    today: date,
    audits: Mapping[str, bool | None] | None = None,
    sync_times: Mapping[str, int | None] | None = None,
) -> list[NodeRow]:
    """One row per node; ``health`` maps a node to (last push ok, last sync ok),
    ``sync_times`` to the unix seconds of its last good sync."""
    enabled: dict[str, int] = {}
    total: dict[str, int] = {}
    for c in configurations:
        for n in c.addresses:
            total[n] = total.get(n, 0) + 1
            if c.enabled:
                enabled[n] = enabled.get(n, 0) + 1
    waiting = set(pending)
    return [
        NodeRow(
            name=n.name,
            address=n.address,
            key_age_days=(today - n.key_created_on).days if n.key_created_on else None,
            peers_enabled=enabled.get(n.name, 0),
            peers_total=total.get(n.name, 0),
            pending_push=n.name in waiting,
            last_push_ok=health.get(n.name, (None, None))[0],
            last_sync_ok=health.get(n.name, (None, None))[1],
            last_audit_ok=(audits or {}).get(n.name),
            last_sync_at=(sync_times or {}).get(n.name),
        )
        for n in sorted(nodes, key=lambda n: n.name)
    ]


def fleet_totals(node_rows: Sequence[NodeRow], rows: Sequence[ConfigurationRow]) -> FleetTotals:
    return FleetTotals(
        nodes=len(node_rows),
        configurations=len(rows),
        enabled=sum(r.enabled for r in rows),
        over_quota=sum(r.over for r in rows),
        bytes_this_period=sum(r.used for r in rows),
        pending_nodes=sum(n.pending_push for n in node_rows),
    )


# --- accounts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    username: str
    device_id: str
    contact: str | None
    configurations: tuple[ConfigurationRow, ...]
    topups: tuple[TopUp, ...]  # top-ups of its configurations, oldest first

    @cached_property
    def search_text(self) -> str:
        return " ".join((self.username, self.device_id, self.contact or "")).lower()


def account_rows(
    accounts: Iterable[Account], rows: Iterable[ConfigurationRow], topups: Iterable[TopUp]
) -> list[AccountRow]:
    by_account: dict[str, list[ConfigurationRow]] = {}
    owner: dict[str, str] = {}
    for r in rows:
        by_account.setdefault(r.account, []).append(r)
        owner[r.name] = r.account
    bought: dict[str, list[TopUp]] = {}
    for t in topups:
        if t.configuration is not None and t.configuration in owner:
            bought.setdefault(owner[t.configuration], []).append(t)
    return [
        AccountRow(
            a.username,
            a.device_id,
            a.contact,
            tuple(sorted(by_account.get(a.username, []), key=lambda r: r.name)),
            tuple(sorted(bought.get(a.username, []), key=lambda t: (t.purchased_on, t.invoice))),
        )
        for a in sorted(accounts, key=lambda a: a.username)
    ]
