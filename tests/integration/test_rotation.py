"""Key rotation on the lab: peer keys while a client keeps sending, node keys with overlap,
the collector's SSH key and a node's host key. Runs after test_push_sync.py (named so), on the
deployed session lab; it changes node2's key and port and the controller's collector key, so
it runs last.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator.core.lab_layout import LabClient
from orchestrator.service import lab as lab_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet
from orchestrator.service.deploy import ansible_work_dir
from tests.conftest import Lab
from tests.integration.fleet_lab import (
    connected,
    ping,
    ping_within,
    root,
    transfer,
    wgfleet,
    wgfleet_with,
)

pytestmark = pytest.mark.lab


def used(fleet: Fleet, name: str) -> int:
    return sum(u.total for u in fleet.store.usage(name))


def start_pinger(client: LabClient, address: str) -> subprocess.Popen[str]:
    """A steady flow through the tunnel (10 packets a second) to count losses against."""
    return subprocess.Popen(
        ["ip", "netns", "exec", client.netns, "ping", "-n", "-i", "0.1", "-W", "1", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_pinger(process: subprocess.Popen[str]) -> tuple[int, list[int]]:
    """(sent, the sequence numbers lost), from ping's own lines after SIGINT.

    The interrupt can land between a request and its reply: that last request is in flight,
    not lost, so only the requests before it count.
    """
    process.send_signal(2)
    out, _ = process.communicate(timeout=10)
    summary = next(line for line in out.splitlines() if "packets transmitted" in line)
    sent = int(summary.split()[0])
    answered = {
        int(word.removeprefix("icmp_seq="))
        for line in out.splitlines()
        for word in line.split()
        if word.startswith("icmp_seq=") and " from " in line
    }
    return sent, sorted(set(range(1, sent)) - answered)


def secrets_everywhere(lab: Lab) -> str:
    """Everything the controller wrote: the store, Ansible's artifacts (text as bytes)."""
    blobs = []
    data_dir = lab.settings.data_dir
    for path in [*data_dir.glob("wgfleet.db*"), *ansible_work_dir(lab.settings).rglob("*")]:
        if path.is_file():
            blobs.append(path.read_bytes().decode("latin-1"))
    return "\n".join(blobs)


def test_a_peer_key_rotates_under_a_running_transfer_and_usage_carries_on(
    lab: Lab, layout, fleet: Fleet
) -> None:
    node, client = layout.nodes[0], layout.clients[0]
    with connected(lab, fleet, client, "rita", "node1") as rita:
        old_key = rita.configuration.public_key
        assert ping(client.netns, str(node.tunnel_address), count=5)
        sync_service.sync(fleet, nodes=["node1"])
        before = used(fleet, "rita-1")
        assert before > 0

        pinger = start_pinger(client, str(node.tunnel_address))
        time.sleep(1)
        rotated = wgfleet(
            lab, "--json", "keys", "rotate", "peer", "rita-1", "--grace", "45s", "--out", "-"
        )
        assert rotated.returncode == 0, rotated.stderr
        grace_end = time.monotonic() + 45
        time.sleep(2)
        sent, lost = stop_pinger(pinger)
        assert sent >= 25 and lost == [], f"{len(lost)} of {sent} lost: {lost}"

        data = json.loads(rotated.stdout)
        new_key = data["public_key"]
        assert data["previous_public_key"] == old_key and new_key != old_key
        client_config = data["client_configs"]["node1"]
        private = next(
            line.split(" = ", 1)[1]
            for line in client_config.splitlines()
            if line.startswith("PrivateKey")
        )
        live = root(lab, layout, 0, ["wg", "show", "wg0", "allowed-ips"])
        assert f"{old_key}\t198.19.1." in live and f"{new_key}\t(none)" in live

        # The client switches to its new config: the node hands the address over itself.
        lab_service.tunnel_up(lab.settings, client.name, client_config)
        assert ping_within(client.netns, str(node.tunnel_address), seconds=10)
        live = root(lab, layout, 0, ["wg", "show", "wg0", "allowed-ips"])
        assert f"{new_key}\t198.19.1." in live and f"{old_key}\t(none)" in live
        assert ping(client.netns, str(node.tunnel_address), count=10)

        config = fleet.store.configuration("rita-1")
        assert (config.name, config.account, config.addresses) == (
            "rita-1",
            "rita",
            rita.configuration.addresses,
        )
        assert sync_service.sync(fleet, nodes=["node1"]).ok
        during = used(fleet, "rita-1")
        assert during > before

        time.sleep(max(0.0, grace_end - time.monotonic()) + 1)
        assert sync_service.sync(fleet, nodes=["node1"]).ok
        assert old_key not in transfer(lab, layout, 0)
        assert new_key in transfer(lab, layout, 0)
        assert fleet.store.configuration("rita-1").previous_public_key is None
        assert used(fleet, "rita-1") >= during
        assert ping(client.netns, str(node.tunnel_address), count=3)
        check = wgfleet(lab, "usage", "check")
        assert check.returncode == 0, check.stdout + check.stderr

        # The client's private key was printed once and is kept nowhere.
        assert private not in secrets_everywhere(lab)


def test_a_node_key_overlap_serves_old_and_new_configs_until_the_grace_ends(
    lab: Lab, layout, fleet: Fleet, tmp_path: Path
) -> None:
    node = layout.nodes[1]
    old_client, new_client = layout.clients
    with (
        connected(lab, fleet, old_client, "olga", "node2"),
        connected(lab, fleet, new_client, "nina", "node2"),
    ):
        before = fleet.store.node("node2")
        rotated = wgfleet(
            lab, "--json", "keys", "rotate", "node", "node2", "--overlap", "--grace", "50s"
        )
        assert rotated.returncode == 0, rotated.stderr
        grace_end = time.monotonic() + 50
        data = json.loads(rotated.stdout)
        assert data["public_key"] == before.public_key
        next_key, next_port = data["next_public_key"], data["next_listen_port"]
        assert next_port != before.listen_port
        assert set(data["reissue"]) >= {"olga-1", "nina-1"}
        node_private = root(lab, layout, 1, ["cat", "/etc/wireguard/wg0.key.next"]).strip()
        assert node_private not in rotated.stdout + rotated.stderr

        reissued = wgfleet(
            lab, "keys", "reissue", "nina-1", "--out", str(tmp_path / "configs"), "--grace", "5m"
        )
        assert reissued.returncode == 0, reissued.stderr
        text = (tmp_path / "configs" / "nina-1.node2.conf").read_text()
        assert f"PublicKey = {next_key}" in text and f":{next_port}\n" in text
        lab_service.tunnel_up(lab.settings, new_client.name, text)

        # Both work side by side: the old config on the old key, the new one on the next.
        assert ping_within(new_client.netns, str(node.tunnel_address), seconds=10)
        assert ping(old_client.netns, str(node.tunnel_address), count=5)
        assert ping(new_client.netns, str(node.tunnel_address), count=5)
        nina_before = used(fleet, "nina-1")
        assert sync_service.sync(fleet, nodes=["node2"]).ok
        assert used(fleet, "nina-1") > nina_before  # the overlap interface's bytes count

        time.sleep(max(0.0, grace_end - time.monotonic()) + 1)
        finished = sync_service.sync(fleet, nodes=["node2"])
        assert finished.ok and any("node2" in note for note in finished.notes)
        after = fleet.store.node("node2")
        assert (after.public_key, after.listen_port, after.rotating) == (
            next_key,
            next_port,
            False,
        )
        assert root(lab, layout, 1, ["wg", "show", "interfaces"]).split() == ["wg0"]
        assert root(lab, layout, 1, ["wg", "show", "wg0", "listen-port"]).strip() == str(next_port)
        assert ping_within(new_client.netns, str(node.tunnel_address), seconds=10)
        assert not ping(old_client.netns, str(node.tunnel_address), count=3)
        assert node_private not in secrets_everywhere(lab)
        check = wgfleet(lab, "usage", "check")
        assert check.returncode == 0, check.stdout + check.stderr
        audit = wgfleet(lab, "--json", "audit", "--limit", "node2")
        checks = {c["check"]: c for c in json.loads(audit.stdout)["checks"]}
        assert checks["wireguard.key_matches_store"]["passed"], checks


def test_a_preshared_key_rotation_needs_the_new_key_on_the_client(
    lab: Lab, layout, fleet: Fleet
) -> None:
    node, client = layout.nodes[2], layout.clients[0]
    with connected(lab, fleet, client, "pia", "node3") as pia:
        assert ping(client.netns, str(node.tunnel_address), count=3)
        rotated = wgfleet(lab, "--json", "keys", "rotate", "psk", "--node", "node3", "--out", "-")
        assert rotated.returncode == 0, rotated.stderr
        new = {
            r["configuration"]: r["preshared_key"] for r in json.loads(rotated.stdout)["rotated"]
        }
        assert "pia-1" in new
        key = pia.configuration.public_key
        live = dict(
            line.split("\t")
            for line in root(lab, layout, 2, ["wg", "show", "wg0", "preshared-keys"]).splitlines()
        )
        assert live[key] == new["pia-1"]
        updated = "\n".join(
            f"PresharedKey = {new['pia-1']}" if line.startswith("PresharedKey") else line
            for line in pia.client_configs["node3"].splitlines()
        )
        lab_service.tunnel_up(lab.settings, client.name, updated + "\n")
        assert ping_within(client.netns, str(node.tunnel_address), seconds=10)
        config = fleet.store.configuration("pia-1")
        assert config.psk_ref != pia.configuration.psk_ref
        assert fleet.store.sealed(str(pia.configuration.psk_ref)) is None  # the old one is gone


def test_keys_status_lists_every_key_and_flags_the_overdue(lab: Lab, fleet: Fleet) -> None:
    status = wgfleet(lab, "--json", "keys", "status")
    assert status.returncode == 0, status.stderr
    keys = json.loads(status.stdout)["keys"]
    kinds = {(k["kind"], k["subject"]) for k in keys}
    assert {("node", "node1"), ("peer", "rita-1"), ("psk", "rita-1")} <= kinds
    assert {("ssh", "deploy"), ("ssh", "collector"), ("ssh", "push")} <= kinds
    assert all(k["created_on"] for k in keys)
    strict = lab.base / "strict.yml"
    strict.write_text(lab.config_file.read_text() + "keys:\n  node_max_age_days: 1\n")
    with fleet.store.transaction():
        fleet.store.db.execute(
            "UPDATE nodes SET key_created_on = ? WHERE name = 'node3'", ("2026-01-01",)
        )
    overdue = wgfleet_with(strict, "--json", "keys", "status", "--overdue", "--check")
    assert overdue.returncode == 1
    assert [k["subject"] for k in json.loads(overdue.stdout)["keys"]] == ["node3"]


def test_the_collector_key_rotates_and_sync_keeps_working(lab: Lab, layout, fleet: Fleet) -> None:
    old = Path(str(lab.settings.ssh.collector_key) + ".pub").read_text()
    rotated = wgfleet(lab, "--json", "keys", "rotate", "ssh", "collector")
    assert rotated.returncode == 0, rotated.stderr
    new = Path(str(lab.settings.ssh.collector_key) + ".pub").read_text()
    assert new != old
    assert not Path(str(lab.settings.ssh.collector_key) + ".old").exists()
    for index in range(3):
        keys = root(lab, layout, index, ["cat", "/var/lib/wgcollect/.ssh/authorized_keys"])
        assert keys.count("ssh-ed25519") == 1 and new.split()[1] in keys
    assert sync_service.sync(fleet).ok
    private = lab.settings.ssh.collector_key.read_text()
    assert private.strip().splitlines()[1] not in secrets_everywhere(lab) + rotated.stdout


def test_a_changed_host_key_is_trusted_only_with_its_fingerprint(
    lab: Lab, layout, fleet: Fleet
) -> None:
    root(
        lab,
        layout,
        2,
        "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' "
        "-f /etc/ssh/ssh_host_ed25519_key && (sleep 1; systemctl restart ssh) >/dev/null 2>&1 &",
    )
    time.sleep(3)
    refused = sync_service.sync(fleet, nodes=["node3"], enforce_quota=False)
    assert not refused.ok and "host key changed" in refused.nodes[0].error
    asked = wgfleet(lab, "nodes", "trust", "node3")
    assert asked.returncode == 2
    offered = asked.stderr.split("node3 offers ")[1].split()[0]
    assert offered.startswith("SHA256:")
    wrong = wgfleet(lab, "nodes", "trust", "node3", "--fingerprint", "SHA256:" + "A" * 43)
    assert wrong.returncode == 2 and "nothing changed" in wrong.stderr
    trusted = wgfleet(lab, "--json", "nodes", "trust", "node3", "--fingerprint", offered)
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["fingerprint"] == offered
    assert sync_service.sync(fleet, nodes=["node3"]).ok
