"""On the lab (named to run after the other lab tests of this directory): a plan that expires cuts a real tunnel and a renewal restores it, the operator's
hook hearing each event once; then the user's data is exported and erased, and the username is
nowhere in the store's files, the controller's artifacts or any node's disk."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from orchestrator.core.models import Plan, ResetRule
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet, open_fleet
from orchestrator.settings import NotifySettings
from tests.conftest import Lab
from tests.integration.fleet_lab import ping, ping_within, wgfleet

pytestmark = pytest.mark.lab

USER = "quillonia"


def hook_settings(lab: Lab, log: Path):
    script = f"import sys; open({str(log)!r}, 'a').write(sys.stdin.read())"
    return dataclasses.replace(
        lab.settings, notify=NotifySettings(command=(sys.executable, "-c", script))
    )


def ours(log: Path, name: str) -> list[str]:
    if not log.exists():
        return []
    events = [json.loads(line) for line in log.read_text().splitlines()]
    return [e["event"] for e in events if e.get("configuration") == name]


def traces(root: Path, needle: bytes) -> list[str]:
    """Files under ``root`` holding ``needle``; overlay mount points are skipped (the nodes'
    own writes are in their upper directories, which are walked)."""
    found = []
    for path in root.rglob("*"):
        if any(part in ("merged", "work") for part in path.parts) or not path.is_file():
            continue
        try:
            if path.stat().st_size < 50 * 2**20 and needle in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found


def test_expiry_renewal_notifications_export_and_erasure(
    lab: Lab, layout, fleet: Fleet, tmp_path: Path
) -> None:
    node, client = layout.nodes[1], layout.clients[1]
    today = date.today()
    log = tmp_path / "events.jsonl"
    fleet.store.upsert_plan(Plan("week", 10**12, ResetRule.NEVER, validity_days=7))
    peers_service.add_account(fleet, USER, "correct horse battery", "dev-q", contact="+15550177")
    added = peers_service.add_configuration(
        fleet,
        USER,
        nodes=["node2"],
        plan="week",
        name=f"{USER}-1",
        today=today - timedelta(days=10),
    )
    name = added.configuration.name
    lab_service.tunnel_up(lab.settings, client.name, added.client_configs["node2"])
    try:
        assert ping(client.netns, str(node.tunnel_address))
        with open_fleet(hook_settings(lab, log), write=True) as hooked:
            first = sync_service.sync(hooked, today=today)
            assert name in first.expired, first.as_dict()
            assert not ping(client.netns, str(node.tunnel_address))  # cut off on the node
            assert name not in sync_service.sync(hooked, today=today).expired
            assert ours(log, name) == ["expired"]

            peers_service.topup(hooked, name, invoice="Q-RENEW", amount="4.99", plan="week")
            # The renewal lets it back at once (a store-only top-up, issue 23); the sync pushes
            # its pending node.
            assert hooked.store.configuration(name).enabled
            renewed = sync_service.sync(hooked, today=today)
            assert renewed.push is not None and "node2" in {
                n.node for n in renewed.push.nodes if n.ok
            }, renewed.as_dict()
            assert ping_within(client.netns, str(node.tunnel_address))
            sync_service.sync(hooked, today=today)
            assert ours(log, name) == ["expired", "re_enabled"]
            event = [json.loads(x) for x in log.read_text().splitlines()][-1]
            assert event["contact"] == "+15550177" and "node" not in event
    finally:
        lab_service.tunnel_down(lab.settings, client.name)

    exported = wgfleet(lab, "accounts", "export", USER)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["account"]["username"] == USER
    assert [c["name"] for c in data["configurations"]] == [name]
    assert [t["invoice"] for t in data["topups"]] == ["Q-RENEW"]

    erased = wgfleet(lab, "accounts", "delete", USER, "--yes", "--json")
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["store_scrubbed"] is True
    failed = wgfleet(lab, "accounts", "export", USER)
    assert (
        failed.returncode == 2 and failed.stderr.strip() == f"wgfleet: error: no account '{USER}'"
    )
    assert traces(lab.settings.data_dir, USER.encode()) == []
    key = added.configuration.public_key.encode()
    assert traces(lab.settings.data_dir, key) == [], "the erased peer's key is still somewhere"
