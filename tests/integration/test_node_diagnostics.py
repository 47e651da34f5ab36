"""Temporary diagnostics on a real lab node: on for one configuration, the view shows the
client's endpoint, then the node ends them by itself with the controller idle, and nothing of
them is left on the node's disk, in /run or in its in-memory journal; the audit passes.

Named to run after test_node_deploy.py: the bare-lab tests of test_lab.py must run before any
deploy puts wg0 on the tunnel network they use."""

from __future__ import annotations

import json
import time

import pytest

from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import Fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account, ping, root, wgfleet

pytestmark = pytest.mark.lab

SECONDS = 20


def test_diagnostics_show_a_client_then_expire_without_the_controller(
    lab: Lab, layout, fleet: Fleet
) -> None:
    node, client = layout.nodes[0], layout.clients[0]
    account(fleet, "dora")
    config = peers_service.add_configuration(fleet, "dora", nodes=["node1"], name="dora-diag")
    lab_service.tunnel_up(lab.settings, client.name, config.client_configs["node1"])
    try:
        assert ping(client.netns, str(node.tunnel_address))
        started = wgfleet(
            lab, "diagnose", "node1", "--for", f"{SECONDS}s", "--peer", "dora-diag", "--json"
        )
        assert started.returncode == 0, started.stderr
        state = json.loads(started.stdout)
        assert state["active"] and state["peer"] == "dora-diag" and state["interface"] == "wg0"
        again = wgfleet(lab, "diagnose", "node1", "--for", "5m")
        assert again.returncode != 0 and "already active" in again.stderr

        assert ping(client.netns, str(node.tunnel_address))
        key = config.configuration.public_key
        # What reaches the controller: the client has an endpoint and a live session. The view
        # refreshes every 2 s on the node's own timer, later on a loaded machine: polled.
        deadline = time.monotonic() + 30
        while True:
            shown = json.loads(wgfleet(lab, "diagnose", "show", "node1", "--json").stdout)
            lines = shown["view"].splitlines()
            if any(line.startswith(f"{key}\tyes\tyes\t") for line in lines):
                break
            assert time.monotonic() < deadline, shown
            time.sleep(1)
        # ...but not the endpoint itself, which only the node's own memory holds.
        assert str(client.underlay) not in shown["view"], shown
        local = root(lab, layout, 0, ["/usr/local/sbin/wgfleet-diag", "show-local"])
        assert f"{key}\t{client.underlay}:" in json.loads(local)["view"]
        status = json.loads(wgfleet(lab, "diagnose", "status", "node1", "--json").stdout)
        assert status[0]["active"] and status[0]["timer"] and status[0]["seconds_left"] > 0

        # The controller does nothing from here on: the node's own timer ends the diagnostic.
        time.sleep(max(0, status[0]["seconds_left"]) + 4)
        left = root(
            lab,
            layout,
            0,
            "test -e /run/wgfleet-diag && echo run-dir; "
            "systemctl is-active wgfleet-diag-view.service wgfleet-diag-expire.timer || true; "
            f"journalctl -o cat | grep -c -e '{client.underlay}' "
            f"-e '{config.configuration.public_key}' || true",
        ).split()
        assert left == ["inactive", "inactive", "0"], left
        audit = wgfleet(
            lab, "audit", "--limit", "node1", "--needle", str(client.underlay), "--json"
        )
        checks = {c["check"]: c for c in json.loads(audit.stdout)["checks"]}
        assert checks["diagnostics.expiry"]["passed"], checks["diagnostics.expiry"]
        assert checks[f"canary.text {client.underlay}"]["passed"]
        assert audit.returncode == 0, [c for c in checks.values() if not c["passed"]]

        # Stopped by hand before its time, too.
        assert wgfleet(lab, "diagnose", "node1", "--for", "10m").returncode == 0
        stopped = json.loads(wgfleet(lab, "diagnose", "stop", "node1", "--json").stdout)
        assert stopped == {"node": "node1", "stopped": True}
        assert (
            json.loads(wgfleet(lab, "diagnose", "status", "node1", "--json").stdout)[0]["active"]
            is False
        )
    finally:
        wgfleet(lab, "diagnose", "stop", "node1")
        lab_service.tunnel_down(lab.settings, client.name)
        peers_service.remove_configurations(fleet, ["dora-diag"])
