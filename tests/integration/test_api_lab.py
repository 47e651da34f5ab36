"""On the lab, through the real HTTP API: a configuration created by the API carries real
traffic, its usage shows through the API after a sync, a top-up through the API lets it back on
the nodes once the quota cut it off, and a deletion through the API leaves no trace of the
user in the store's files or the controller's data directory."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from orchestrator.adapters.lab.clients import ping_from
from orchestrator.server.run import api_with_pushes
from orchestrator.service import lab as lab_service
from orchestrator.service.context import open_fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import ping, ping_within, transfer, wgfleet
from tests.integration.test_users_rights import traces
from tests.server.conftest import Running, make_token, start, stop

pytestmark = pytest.mark.lab

USER = "apiuser"


@pytest.fixture
def api(lab: Lab, deployed: None) -> Iterator[Running]:
    token = make_token(lab.settings, "lab-backend", ["provision", "billing", "read"])
    with api_with_pushes(lab.settings) as app:
        served = start(app)
        try:
            yield Running(served.url, app, lab.settings, {"all": token})
        finally:
            stop(served)
    with open_fleet(lab.settings, write=True) as fleet:
        fleet.store.revoke_token("lab-backend")


def pushed_by_the_worker(backend: httpx.Client) -> None:
    """Wait (readiness, not a timed assertion) until the API reports no node pending."""
    deadline = time.monotonic() + 120
    while backend.get("/v1/health").json()["pending_nodes"]:
        assert time.monotonic() < deadline, backend.get("/v1/health").json()
        time.sleep(0.2)


def test_a_configuration_made_through_the_api_lives_is_billed_topped_up_and_erased(
    lab: Lab, layout, api: Running
) -> None:
    client = layout.clients[0]
    target = str(layout.nodes[0].tunnel_address)
    with api.as_scope("all") as backend:
        made = backend.post(
            "/v1/accounts",
            json={"username": USER, "password": "correct horse", "device_id": "dev-api"},
        )
        assert made.status_code == 201, made.text
        config = backend.post(
            "/v1/configurations",
            json={"account": USER, "nodes": ["node1"], "quota_bytes": 200_000},
        )
        assert config.status_code == 201, config.text
        created = config.json()
        name = created["name"]
        # Committed, answered, then taken to the node by the server's push worker.
        assert created["pending_nodes"] == ["node1"], created
        pushed_by_the_worker(backend)
        lab_service.tunnel_up(lab.settings, client.name, created["client_configs"]["node1"])
        try:
            assert ping_within(client.netns, target)
            ping_from(client.netns, target, count=40, interval=0.02, size=8000, wait=1)
            synced = wgfleet(lab, "sync", "--json")
            assert name in json.loads(synced.stdout)["newly_over_quota"], synced.stdout
            status = backend.get(f"/v1/configurations/{name}").json()
            assert status["used_bytes"] >= 200_000
            assert (status["enabled"], status["disabled_reason"]) == (False, "over_quota")
            assert status["remaining_bytes"] <= 0
            assert not ping(client.netns, target, count=3)

            topup = {
                "configuration": name,
                "invoice": "API-LAB-1",
                "amount": "4.99",
                "bytes": 10**9,
            }
            granted = backend.post("/v1/topups", json=topup)
            assert granted.status_code == 201, granted.text
            # The top-up lets it back on in the store; the worker puts it back on the node.
            assert granted.json()["pending_nodes"] == ["node1"], granted.text
            assert backend.post("/v1/topups", json=topup).status_code == 200
            pushed_by_the_worker(backend)
            assert backend.get(f"/v1/configurations/{name}").json()["enabled"] is True
            assert ping_within(client.netns, target)
        finally:
            lab_service.tunnel_down(lab.settings, client.name)

        exported = backend.get(f"/v1/accounts/{USER}/export").json()
        (placed,) = exported["configurations"]
        public_key = placed["public_key"]
        erased = backend.delete(f"/v1/accounts/{USER}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["removed_configurations"] == [name]
        assert erased.json()["scrubbed"] is True
        assert "node1" not in erased.json()["pending_nodes"]
        assert backend.get(f"/v1/accounts/{USER}/export").status_code == 404
    assert public_key not in transfer(lab, layout, 0)
    assert traces(lab.settings.data_dir, USER.encode()) == []
    assert traces(lab.settings.data_dir, public_key.encode()) == []
