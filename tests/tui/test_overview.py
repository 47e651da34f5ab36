"""The pure read models behind the screens, and the service reading them from a real store."""

from __future__ import annotations

import ipaddress
from datetime import date

from orchestrator.core.models import Configuration, DisabledReason, Node
from orchestrator.core.overview import (
    CONFIGURATION_SORTS,
    ConfigurationRow,
    NodeRow,
    filter_rows,
    node_rows,
    percent,
    quota_bar,
    sort_rows,
)
from orchestrator.core.units import human_bytes
from orchestrator.service.context import open_fleet
from orchestrator.service.overview import accounts_overview, configuration_overview
from orchestrator.settings import Settings
from tests.tui.conftest import GIB, TODAY


def row(name: str, used: int, allowance: int | None, **kw: object) -> ConfigurationRow:
    fields: dict[str, object] = {
        "account": name.split("-")[0],
        "nodes": ("n1",),
        "enabled": True,
        "disabled_reason": None,
        "plan": None,
    }
    fields.update(kw)
    return ConfigurationRow(name=name, used=used, allowance=allowance, **fields)  # type: ignore[arg-type]


def test_quota_bar_and_percent() -> None:
    assert quota_bar(0, 100, 10) == "░" * 10
    assert quota_bar(1, 100, 10) == "█" + "░" * 9  # any use shows
    assert quota_bar(50, 100, 10) == "█" * 5 + "░" * 5
    assert quota_bar(150, 100, 10) == "█" * 10
    assert quota_bar(0, 0, 4) == "████"  # a zero allowance is used up
    assert quota_bar(5, None, 4) == "····"
    assert (percent(50, 100), percent(5, None), percent(10**9, 1)) == ("50%", "-", "999%")


def test_human_bytes_matches_the_cli() -> None:
    assert [human_bytes(n) for n in (None, 0, 1023, 1024, 3 * GIB // 2, 2**41)] == [
        "-",
        "0 B",
        "1023 B",
        "1.00 KiB",
        "1.50 GiB",
        "2.00 TiB",
    ]


def test_status_words() -> None:
    assert row("a-1", 5, 10).status == "enabled"
    assert row("a-1", 10, 10).status == "enabled, over quota"
    assert (
        row("a-1", 0, 10, enabled=False, disabled_reason=DisabledReason.OVER_QUOTA).status
        == "disabled: over quota"
    )
    assert row("a-1", 0, None).usage(4) == "···· 0 B (unmetered)"
    assert row("a-1", 512, 1024).usage(4, compact=True) == "██░░  50%"


def test_filter_needs_every_term_in_any_field() -> None:
    rows = [row("alice-1", 0, None, nodes=("n1", "n2")), row("bob-1", 0, None, plan="gold")]
    text = lambda r: r.search_text  # noqa: E731
    assert filter_rows(rows, "", text) == rows
    assert [r.name for r in filter_rows(rows, "ALICE n2", text)] == ["alice-1"]
    assert [r.name for r in filter_rows(rows, "gold", text)] == ["bob-1"]
    assert filter_rows(rows, "alice gold", text) == []


def test_sort_by_usage_puts_unmetered_last() -> None:
    rows = [row("a-1", 5, 10), row("b-1", 100, None), row("c-1", 9, 10), row("d-1", 1, 0)]
    names = [r.name for r in sort_rows(rows, CONFIGURATION_SORTS, "usage", True)]
    assert names == ["d-1", "c-1", "a-1", "b-1"]


def test_node_rows_count_peers_and_judge_reachability() -> None:
    net = ipaddress.IPv4Network("198.19.0.0/24")
    nodes = [
        Node("n2", "x", net, key_created_on=date(2024, 5, 1)),
        Node("n1", "y", ipaddress.IPv4Network("198.19.1.0/24")),
    ]
    configs = [
        Configuration("a-1", "a", "k1", None, {"n1": net[2], "n2": net[2]}),
        Configuration("a-2", "a", "k2", None, {"n2": net[3]}, enabled=False),
    ]
    rows = node_rows(nodes, configs, ["n2"], {"n2": (True, False)}, date(2024, 5, 15))
    assert rows == [
        NodeRow("n1", "y", None, 1, 1, False, None, None),
        NodeRow("n2", "x", 14, 1, 2, True, True, False),
    ]
    assert [r.reachable for r in rows] == [None, False]
    assert NodeRow("n", "a", 1, 0, 0, False, True, None).reachable is True


def test_service_overview_reads_the_store(settings: Settings) -> None:
    with open_fleet(settings, write=True) as fleet:
        rows = {r.name: r for r in configuration_overview(fleet, TODAY)}
        accounts = {a.username: a for a in accounts_overview(fleet, TODAY)}
    assert (rows["alice-1"].used, rows["alice-1"].allowance) == (4 * GIB, 10 * GIB)
    assert (rows["alice-2"].used, rows["alice-2"].allowance) == (3 * GIB // 2, 3 * GIB // 2)
    assert rows["carol-1"].allowance is None
    assert [c.name for c in accounts["bob"].configurations] == ["bob-1", "bob-2"]
    assert [t.invoice for t in accounts["alice"].topups] == ["INV-1"]
    assert accounts["carol"].topups == ()
