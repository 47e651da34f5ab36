"""The dashboard's alert rules (core/alerts.py): pure, on plain rows."""

from __future__ import annotations

from datetime import date

from orchestrator.core.alerts import (
    AlertKind,
    AlertRules,
    Reachability,
    age_text,
    fleet_alerts,
)
from orchestrator.core.keys import KeyAge, KeyKind, KeyRecord
from orchestrator.core.overview import NodeRow
from tests.tui.test_overview import row as config

TODAY = date(2024, 5, 15)
NOW = 1_715_774_400  # 2024-05-15 12:00 UTC
RULES = AlertRules(NOW, TODAY, sync_interval=300, warn_ratio=0.8, expiry_warn_days=7)


def node(name: str, **kw: object) -> NodeRow:
    fields: dict[str, object] = {
        "address": "198.18.47.1",
        "key_age_days": 10,
        "peers_enabled": 1,
        "peers_total": 1,
        "pending_push": False,
        "last_push_ok": True,
        "last_sync_ok": True,
        "last_audit_ok": True,
        "last_sync_at": NOW - 60,
    }
    fields.update(kw)
    return NodeRow(name, **fields)  # type: ignore[arg-type]


def key(kind: KeyKind, subject: str, age: int, most: int) -> KeyAge:
    return KeyAge(KeyRecord(kind, subject, "pub", date(2024, 1, 1)), age, most)


def test_a_healthy_fleet_raises_nothing() -> None:
    healthy = [node("n1"), node("n2")]
    reach = {"n1": Reachability(True, NOW), "n2": Reachability(True, NOW)}
    configs = [config("a-1", 10, 100), config("a-2", 0, None)]
    assert fleet_alerts(healthy, reach, configs, [key(KeyKind.NODE, "n1", 10, 180)], RULES) == []


def test_every_kind_errors_first_and_alike_nodes_share_one() -> None:
    nodes = [
        node("n1", last_sync_at=NOW - 3 * 300 - 1),  # stale: three runs missed
        node("n2", last_sync_ok=False, pending_push=True),
        node("n3", last_audit_ok=False, pending_push=True),
    ]
    refused = "no pinned known_hosts file at /x; refusing to connect (pin each node: n1 ...)"
    reach = {name: Reachability(False, NOW, refused.replace("n1", name)) for name in ("n1", "n2")}
    configs = [
        config("over-1", 100, 100),
        config("near-1", 85, 100),
        config("ends-1", 0, None, valid_until=date(2024, 5, 22)),
        config("later-1", 0, None, valid_until=date(2024, 5, 23)),
        config("off-1", 200, 100, enabled=False),  # cut off already: nothing to do
    ]
    ages = [key(KeyKind.PEER, "p-1", 400, 365), key(KeyKind.PEER, "p-2", 366, 365)]
    alerts = fleet_alerts(nodes, reach, configs, ages, RULES)
    assert [(a.severity, str(a.kind), a.subject) for a in alerts] == [
        ("error", "unreachable", "n1, n2"),
        ("error", "sync failed", "n2"),
        ("error", "audit failed", "n3"),
        ("error", "over quota", "1 configuration"),
        ("warning", "sync stale", "n1"),
        ("warning", "key overdue", "2 peer keys"),
        ("warning", "push pending", "n2, n3"),
        ("warning", "near quota", "1 configuration"),
        ("warning", "expiring", "1 configuration"),
    ]
    assert {a.kind for a in alerts} == set(AlertKind)
    by_kind = {a.kind: a for a in alerts}
    assert by_kind[AlertKind.UNREACHABLE].detail == "no pinned known_hosts file at /x"
    assert "over-1" in by_kind[AlertKind.OVER_QUOTA].detail
    assert "ends-1" in by_kind[AlertKind.EXPIRING].detail
    assert by_kind[AlertKind.SYNC_FAILED].as_dict()["severity"] == "error"


def test_many_names_are_counted_not_listed() -> None:
    configs = [config(f"c-{i}", 100, 100) for i in range(5)]
    (alert,) = fleet_alerts([], {}, configs, [], RULES)
    assert alert.subject == "5 configurations"
    assert alert.detail.startswith("c-0, c-1, c-2 and 2 more:")


def test_ages_are_coarse() -> None:
    assert [age_text(s) for s in (0, 59, 60, 3599, 3600, 86399, 86400 * 3)] == [
        "just now",
        "just now",
        "1m ago",
        "59m ago",
        "1h ago",
        "23h ago",
        "3d ago",
    ]
