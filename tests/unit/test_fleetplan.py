"""Plans computed from fixture fleet files against a fixture store state, compared with golden
text and JSON (regenerate with WGFLEET_UPDATE_GOLDEN=1 after a deliberate change)."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest

from orchestrator.core.fleetfile import parse_fleet_file
from orchestrator.core.fleetplan import FleetState, plan_changes, plan_problems, render_plan
from orchestrator.core.models import Account, Configuration, Node, Plan, ResetRule

GOLDEN = Path(__file__).parent / "golden"
SITE = "s" * 42 + "A="
OPS = "o" * 42 + "A="
NEW = "n" * 42 + "A="

FILE = f"""\
version: 1
nodes:
  node1: {{port: 51820}}
  node2: {{port: 51820}}
  node3: {{}}
plans:
  basic: {{quota: 10GiB, reset: monthly, anchor_day: 5, price: "4.99"}}
  pro: {{quota: 100GiB, price: "9.99"}}
accounts:
  ops: {{device_id: ops-laptop, contact: "+15550100"}}
configurations:
  - {{name: site-berlin, account: ops, nodes: [node1, node2], public_key: "{SITE}"}}
  - {{name: ops-new, account: ops, nodes: [node2], public_key: "{NEW}", plan: pro}}
"""


def state(**overrides: object) -> FleetState:
    net = ipaddress.IPv4Network
    base = {
        "nodes": (
            Node("node1", "198.18.0.10", net("198.19.1.0/24"), public_key=SITE),
            Node("node2", "198.18.0.11", net("198.19.2.0/24"), 51821, public_key=OPS),
        ),
        "plans": (
            Plan("basic", 5 * 2**30, ResetRule.MONTHLY, 5, "4.99"),
            Plan("old", 2**30),
        ),
        "accounts": (Account("ops", "!", "ops-laptop"),),
        "configurations": (
            Configuration(
                "site-berlin",
                "ops",
                SITE,
                None,
                {"node1": ipaddress.IPv4Address("198.19.1.2")},
            ),
            Configuration(
                "ops-old", "ops", OPS, None, {"node2": ipaddress.IPv4Address("198.19.2.3")}
            ),
        ),
        "overdue_keys": ("node node1",),
    }
    base.update(overrides)
    return FleetState(**base)  # type: ignore[arg-type]


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("WGFLEET_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_plan_text_and_json_match_the_golden_files() -> None:
    changes = plan_changes(parse_fleet_file(FILE, "fleet.yml"), state())
    golden("plan.txt", render_plan(changes))
    golden("plan.json", json.dumps([c.as_dict() for c in changes], indent=2) + "\n")


def test_a_converged_fleet_plans_no_changes_but_still_shows_overdue_keys() -> None:
    fleet = parse_fleet_file(
        f"""\
version: 1
nodes:
  node1: {{port: 51820}}
  node2: {{port: 51820}}
plans:
  basic: {{quota: 5GiB, reset: monthly, anchor_day: 5, price: "4.99"}}
  old: {{quota: 1GiB}}
accounts:
  ops: {{device_id: ops-laptop}}
configurations:
  - {{name: site-berlin, account: ops, nodes: [node1], public_key: "{SITE}"}}
  - {{name: ops-old, account: ops, nodes: [node2], public_key: "{OPS}"}}
""",
        "fleet.yml",
    )
    changes = plan_changes(fleet, state())
    assert [(c.kind, c.action) for c in changes] == [("key", "overdue")]
    assert render_plan(changes).endswith("no changes\n")
    assert not any(c.is_change for c in changes)


def test_removing_a_plan_in_use_is_a_problem_at_plan_time() -> None:
    fleet = parse_fleet_file("version: 1\n", "fleet.yml")
    used = Configuration("cust-1", "cust", NEW, None, {}, plan="old")
    problems = plan_problems(fleet, state(all_configurations=(used,)), plan_changes(fleet, state()))
    assert problems == ["plans.old: missing from the file but used by cust-1"]


def test_the_fingerprint_moves_with_the_store() -> None:
    assert state().fingerprint() == state().fingerprint()
    assert state().fingerprint() != state(plans=()).fingerprint()


@pytest.mark.parametrize("port", [51820, 51821])
def test_a_node_on_either_of_its_two_ports_needs_no_deploy(port: int) -> None:
    node = Node("node1", "a", ipaddress.IPv4Network("198.19.1.0/24"), port, public_key=SITE)
    fleet = parse_fleet_file("version: 1\nnodes:\n  node1: {port: 51820}\n", "f.yml")
    changes = plan_changes(fleet, state(nodes=(node,), plans=(), overdue_keys=()))
    assert [c for c in changes if c.kind == "node"] == []
