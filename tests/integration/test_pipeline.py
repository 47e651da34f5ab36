"""Pipelines and cron on the lab: a fleet file planned, applied and planned again; export then
plan shows nothing to do; a static configuration from the file carries real traffic; two syncs
started together never double-count."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.adapters import wgkeys
from orchestrator.core.peers import render_client_config
from orchestrator.service import lab as lab_service
from orchestrator.service.context import Fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import WGFLEET, ping, ping_within, transfer, wgfleet

pytestmark = pytest.mark.lab


def test_export_then_plan_shows_no_changes(lab: Lab, fleet: Fleet, tmp_path: Path) -> None:
    exported = tmp_path / "fleet.yml"
    result = wgfleet(lab, "export", "-o", str(exported))
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(exported.read_text())
    assert sorted(document["nodes"]) == ["node1", "node2", "node3"]
    assert document["nodes"]["node1"]["implementation"] == "userspace"
    planned = wgfleet(lab, "plan", "-f", str(exported))
    assert (planned.returncode, planned.stdout) == (0, "no changes\n"), planned.stderr


def test_a_pipeline_plans_applies_and_the_static_configuration_works(
    lab: Lab, layout, fleet: Fleet, tmp_path: Path
) -> None:
    base = tmp_path / "base.yml"
    assert wgfleet(lab, "export", "-o", str(base)).returncode == 0
    document = yaml.safe_load(base.read_text())
    keys = wgkeys.new_keypair()
    document["inventory"] = str(lab.settings.inventory)
    document["accounts"] = {"ops": {"device_id": "noc-router"}}
    document["configurations"] = [
        {
            "name": "site-link",
            "account": "ops",
            "nodes": ["node1"],
            "public_key": keys.public_key,
            "quota": "unmetered",
        }
    ]
    path = tmp_path / "fleet.yml"
    path.write_text(yaml.safe_dump(document))

    planned = wgfleet(lab, "plan", "-f", str(path), "--json")
    assert planned.returncode == 2, planned.stderr
    pending = [
        (c["kind"], c["action"], c["subject"]) for c in json.loads(planned.stdout)["changes"]
    ]
    assert pending == [("account", "add", "ops"), ("configuration", "add", "site-link")]

    applied = wgfleet(lab, "apply", "-f", str(path), "--yes", "--json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["push"]["ok"]
    again = wgfleet(lab, "plan", "-f", str(path))
    assert (again.returncode, again.stdout) == (0, "no changes\n"), again.stderr

    client = layout.clients[0]
    node = layout.nodes[0]
    config = fleet.store.configuration("site-link")
    text = render_client_config(
        private_key=keys.private_key,
        address=config.addresses["node1"],
        node=fleet.store.node("node1"),
        preshared_key=None,
    )
    lab_service.tunnel_up(lab.settings, client.name, text)
    try:
        assert ping_within(client.netns, str(node.tunnel_address))
        assert ping(client.netns, str(node.tunnel_address), count=5)
        assert wgfleet(lab, "sync").returncode == 0
        assert sum(u.total for u in fleet.store.usage("site-link")) > 0

        # Back to the exported file: what the pipeline added leaves the store and the node.
        removed = wgfleet(lab, "apply", "-f", str(base), "--yes")
        assert removed.returncode == 0, removed.stderr
        assert keys.public_key not in transfer(lab, layout, 0)
        assert "ops" not in {a.username for a in fleet.store.accounts()}
        assert not ping(client.netns, str(node.tunnel_address), count=2)
    finally:
        lab_service.tunnel_down(lab.settings, client.name)
    assert wgfleet(lab, "usage", "check").returncode == 0


def test_two_syncs_started_together_run_one_at_a_time(lab: Lab, deployed: None) -> None:
    runs = [
        subprocess.Popen(
            [WGFLEET, "--config", str(lab.config_file), "sync"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = sorted((run.wait(timeout=180), run.stderr.read()) for run in runs if run.stderr)
    codes = [code for code, _ in outcomes]
    assert codes in ([0, 0], [0, 3]), outcomes  # 0 and 0 when one finished before the other
    if codes == [0, 3]:
        assert outcomes[1][1].startswith("wgfleet: error: another wgfleet run holds")
    checked = wgfleet(lab, "usage", "check", "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["mismatches"] == []
