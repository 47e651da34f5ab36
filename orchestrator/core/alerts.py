"""What needs the operator, first: the rules that turn the fleet's state into alerts.

Pure: the inputs are read models (node rows, configuration rows, key ages) and the result of
the last reachability check, each with the time it describes; the same rules serve the TUI's
dashboard and anything that prints them as JSON. Nothing here names a time of user activity:
the only times are a node's last sync, the moment a node was checked, and billing dates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from orchestrator.core.keys import KeyAge
from orchestrator.core.overview import ConfigurationRow, NodeRow

# A sync is stale once this many scheduled runs have passed without one that worked.
STALE_AFTER_RUNS = 3
NAMES_SHOWN = 3  # an alert about many configurations or keys names this many, then counts


class AlertKind(StrEnum):
    """Every kind of alert, in the order the dashboard lists them (within a severity)."""

    UNREACHABLE = "unreachable"
    SYNC_FAILED = "sync failed"
    AUDIT_FAILED = "audit failed"
    OVER_QUOTA = "over quota"
    SYNC_STALE = "sync stale"
    KEY_OVERDUE = "key overdue"
    PUSH_PENDING = "push pending"
    NEAR_QUOTA = "near quota"
    EXPIRING = "expiring"


ERRORS = frozenset(
    {AlertKind.UNREACHABLE, AlertKind.SYNC_FAILED, AlertKind.AUDIT_FAILED, AlertKind.OVER_QUOTA}
)
ORDER = {kind: index for index, kind in enumerate(AlertKind)}


@dataclass(frozen=True)
class Reachability:
    """The answer of one node to a key exchange (no login), and when it was asked."""

    reachable: bool
    checked_at: int  # unix seconds of the check: the controller's time, never a user's
    error: str = ""


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    subject: str  # a node, or a count of configurations or keys
    detail: str

    @property
    def severity(self) -> str:
        return "error" if self.kind in ERRORS else "warning"

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": str(self.kind),
            "severity": self.severity,
            "subject": self.subject,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AlertRules:
    """The thresholds the rules judge against, from the settings."""

    now: int  # unix seconds
    today: date
    sync_interval: int  # seconds between scheduled syncs (usage.sync_interval)
    warn_ratio: float  # usage.warn_percent / 100
    expiry_warn_days: int  # usage.expiry_warn_days


def age_text(seconds: int) -> str:
    """A coarse age for a screen: ``just now``, ``5m``, ``3h``, ``2d`` (ago)."""
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"  # pragma: no cover - the loop always returns


def first_clause(message: str) -> str:
    """A reason up to its first ``; `` (the hint after it names the node: nodes refusing for
    the same reason then share one alert, and the node's own screen shows the whole)."""
    return message.split("; ", 1)[0]


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def _counted(names: Sequence[str], one: str, many: str) -> str:
    return f"1 {one}" if len(names) == 1 else f"{len(names)} {many}"


def node_alerts(node: NodeRow, reach: Reachability | None, rules: AlertRules) -> Iterable[Alert]:
    """A node's own alerts: unreachable, failed sync or audit, stale sync, pending push."""
    if reach is not None and not reach.reachable:
        yield Alert(AlertKind.UNREACHABLE, node.name, first_clause(reach.error) or "no answer")
    if node.last_sync_ok is False:
        since = (
            f"; last good sync {age_text(rules.now - node.last_sync_at)}"
            if node.last_sync_at is not None
            else "; never synced"
        )
        yield Alert(AlertKind.SYNC_FAILED, node.name, "its last sync failed" + since)
    elif node.last_sync_at is not None:
        age = rules.now - node.last_sync_at
        if age > STALE_AFTER_RUNS * rules.sync_interval:
            yield Alert(
                AlertKind.SYNC_STALE,
                node.name,
                f"last sync {age_text(age)}, scheduled every {rules.sync_interval // 60}m",
            )
    if node.last_audit_ok is False:
        yield Alert(AlertKind.AUDIT_FAILED, node.name, "its last audit found a check failing")
    if node.pending_push:
        yield Alert(AlertKind.PUSH_PENDING, node.name, "changes wait for a push (Apply)")


def configuration_alerts(rows: Sequence[ConfigurationRow], rules: AlertRules) -> Iterable[Alert]:
    """Enabled configurations over quota, near it, or whose validity ends within the window;
    one alert per kind, naming the first few."""
    over = [r.name for r in rows if r.enabled and r.over]
    near = [
        r.name
        for r in rows
        if r.enabled and not r.over and r.allowance is not None and r.ratio >= rules.warn_ratio
    ]
    horizon = rules.today + timedelta(days=rules.expiry_warn_days)
    ending = [
        r.name for r in rows if r.enabled and r.valid_until is not None and r.valid_until <= horizon
    ]
    if over:
        yield Alert(
            AlertKind.OVER_QUOTA,
            _counted(over, "configuration", "configurations"),
            f"{_names(over)}: cut off at the next sync",
        )
    if near:
        yield Alert(
            AlertKind.NEAR_QUOTA,
            _counted(near, "configuration", "configurations"),
            f"{_names(near)}: at {round(rules.warn_ratio * 100)}% of quota or more",
        )
    if ending:
        yield Alert(
            AlertKind.EXPIRING,
            _counted(ending, "configuration", "configurations"),
            f"{_names(ending)}: valid until {rules.expiry_warn_days} days from now or less",
        )


def key_alerts(ages: Iterable[KeyAge]) -> Iterable[Alert]:
    """Overdue keys, one alert per kind of key."""
    by_kind: dict[str, list[str]] = {}
    for age in ages:
        if age.overdue:
            by_kind.setdefault(str(age.record.kind), []).append(age.record.subject)
    for kind, subjects in sorted(by_kind.items()):
        yield Alert(
            AlertKind.KEY_OVERDUE,
            _counted(subjects, f"{kind} key", f"{kind} keys"),
            f"{_names(sorted(subjects))}: past the maximum age (Keys screen)",
        )


def fleet_alerts(
    nodes: Sequence[NodeRow],
    reachability: Mapping[str, Reachability],
    configurations: Sequence[ConfigurationRow],
    key_ages: Iterable[KeyAge],
    rules: AlertRules,
) -> list[Alert]:
    """Every alert, errors first, then by kind in AlertKind's order, then by subject; nodes
    with the same alert for the same reason share one (300 nodes refusing alike: one line)."""
    alerts = merged(a for n in nodes for a in node_alerts(n, reachability.get(n.name), rules))
    alerts += configuration_alerts(configurations, rules)
    alerts += key_alerts(key_ages)
    return sorted(alerts, key=lambda a: (a.severity != "error", ORDER[a.kind], a.subject))


def merged(alerts: Iterable[Alert]) -> list[Alert]:
    """One alert per kind and detail, naming every subject that had it."""
    subjects: dict[tuple[AlertKind, str], list[str]] = {}
    for alert in alerts:
        subjects.setdefault((alert.kind, alert.detail), []).append(alert.subject)
    return [Alert(kind, _names(names), detail) for (kind, detail), names in subjects.items()]
