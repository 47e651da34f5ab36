"""Configurations pushed live to deployed lab nodes, real tunnels, exact usage and quotas.

Runs after test_node_deploy.py on the session lab (it deploys the nodes itself if needed).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.adapters.lab.clients import ping_from
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import push as push_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import Fleet
from tests.conftest import LAB_NODES, Lab
from tests.integration.fleet_lab import (
    WGFLEET,
    account,
    connected,
    ping,
    ping_within,
    push_network_widened,
    root,
    transfer,
    tunnel,
    wgfleet,
)

pytestmark = pytest.mark.lab


def test_other_tunnels_run_undisturbed_while_a_peer_is_disabled_enabled_removed_and_readded(
    lab: Lab, layout, fleet: Fleet
) -> None:
    node = layout.nodes[0]
    client_a, client_b = layout.clients
    account(fleet, "alice")
    account(fleet, "bob")
    a = peers_service.add_configuration(fleet, "alice", nodes=["node1"], name="alice-steady")
    b = peers_service.add_configuration(fleet, "bob", nodes=["node1"], name="bob-flaky")
    assert a.push.ok and b.push.ok
    lab_service.tunnel_up(lab.settings, client_a.name, a.client_configs["node1"])
    lab_service.tunnel_up(lab.settings, client_b.name, b.client_configs["node1"])
    stream = None
    pinger = None
    try:
        assert ping(client_a.netns, str(node.tunnel_address))
        assert ping(client_b.netns, str(node.tunnel_address))
        # A TCP stream from A to a sink on the node, and a fast ping, run through every change to B.
        root(
            lab,
            layout,
            0,
            "nft insert rule inet wgfleet_filter input iifname wg0 tcp dport 5001 accept",
        )
        root(
            lab,
            layout,
            0,
            [
                "systemd-run",
                "--unit=wgtest-sink",
                "--collect",
                "python3",
                "-c",
                textwrap.dedent(f"""
            import socket
            s = socket.create_server(("{node.tunnel_address}", 5001))
            c, _ = s.accept()
            total = 0
            while True:
                data = c.recv(65536)
                if not data:
                    break
                total += len(data)
            open("/run/wgtest-sink", "w").write(str(total))
        """),
            ],
        )
        time.sleep(0.5)
        stream = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                client_a.netns,
                sys.executable,
                "-c",
                textwrap.dedent(f"""
                import socket, sys, time
                s = socket.create_connection(("{node.tunnel_address}", 5001), timeout=10)
                end = time.monotonic() + float(sys.argv[1])
                while time.monotonic() < end:
                    s.sendall(b"x" * 16384)
                    time.sleep(0.01)
                s.close()
            """),
                "45",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        pinger = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                client_a.netns,
                "ping",
                "-i",
                "0.05",
                "-w",
                "43",
                str(node.tunnel_address),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)
        before = transfer(lab, layout, 0)[a.configuration.public_key]

        changed, push = peers_service.set_enabled(
            fleet, ["bob-flaky"], False, peers_service.DisabledReason.OPERATOR
        )
        assert push.ok and [c.name for c in changed] == ["bob-flaky"]
        assert b.configuration.public_key not in transfer(lab, layout, 0)
        assert not ping(client_b.netns, str(node.tunnel_address), count=3)
        _, push = peers_service.set_enabled(fleet, ["bob-flaky"], True)
        assert push.ok and ping_within(client_b.netns, str(node.tunnel_address))
        _, push = peers_service.remove_configurations(fleet, ["bob-flaky"])
        assert push.ok and not ping(client_b.netns, str(node.tunnel_address), count=2)
        again = peers_service.add_configuration(fleet, "bob", nodes=["node1"], name="bob-flaky")
        lab_service.tunnel_up(lab.settings, client_b.name, again.client_configs["node1"])
        assert ping(client_b.netns, str(node.tunnel_address))
        after = transfer(lab, layout, 0)[a.configuration.public_key]
        assert after[0] > before[0] and after[1] > before[1], "A's counters went back or stalled"

        assert stream.wait(timeout=60) == 0, stream.stderr.read() if stream.stderr else ""
        output, _ = pinger.communicate(timeout=60)
        stats = next(line for line in output.splitlines() if "packets transmitted" in line)
        transmitted, received = (int(stats.split()[i]) for i in (0, 3))
        assert transmitted > 100 and received == transmitted, stats
        time.sleep(0.5)
        assert int(root(lab, layout, 0, ["cat", "/run/wgtest-sink"])) > 1_000_000
    finally:
        for process in (stream, pinger):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        root(
            lab,
            layout,
            0,
            "systemctl stop wgtest-sink 2>/dev/null; rm -f /run/wgtest-sink; "
            "nft flush chain inet wgfleet_filter input 2>/dev/null; systemctl reload-or-restart nftables || true",
        )
        lab_service.tunnel_down(lab.settings, client_a.name)
        lab_service.tunnel_down(lab.settings, client_b.name)


def test_a_disable_while_the_node_is_down_converges_and_survives_a_reboot(
    lab: Lab, layout, fleet: Fleet
) -> None:
    account(fleet, "carol")
    carol = peers_service.add_configuration(fleet, "carol", nodes=["node2"], name="carol-1")
    key = carol.configuration.public_key
    assert key in transfer(lab, layout, 1)
    lab_service.node_stop(lab.settings, "node2")
    try:
        result = wgfleet(lab, "peers", "disable", "carol-1")
        assert result.returncode == 1
        assert "wgfleet: push failed on node2:" in result.stderr
        assert "kept pending" in result.stderr
    finally:
        lab_service.node_start(lab.settings, "node2")
    assert "node2" in push_service.pending_nodes(fleet)
    applied = wgfleet(lab, "apply", "--json")
    assert applied.returncode == 0, applied.stderr
    assert key not in transfer(lab, layout, 1)
    assert push_service.pending_nodes(fleet) == []
    lab_service.node_stop(lab.settings, "node2")
    lab_service.node_start(lab.settings, "node2")
    assert key not in transfer(lab, layout, 1)


def test_a_thousand_peers_on_one_node(lab: Lab, layout, fleet: Fleet) -> None:
    import ipaddress

    from orchestrator.adapters import wgkeys
    from orchestrator.core.models import Configuration

    account(fleet, "bulk")
    # More peers than a lab node's /24 pool holds: addresses from a spare /21 of 198.19/16,
    # which the node's push accepts for this test only.
    spare_network = "198.19.200.0/21"
    spare = list(ipaddress.IPv4Network(spare_network).hosts())[:1000]
    names = [f"bulk-{i}" for i in range(1000)]
    with fleet.store.transaction():
        for name, address in zip(names, spare, strict=True):
            fleet.store.add_configuration(
                Configuration(
                    name, "bulk", wgkeys.new_keypair().public_key, None, {"node3": address}
                )
            )
    with push_network_widened(lab, layout, 2, spare_network):
        push_a_thousand_peers(lab, layout, fleet, names)


def push_a_thousand_peers(lab: Lab, layout, fleet: Fleet, names: list[str]) -> None:
    try:
        loaded = push_service.push(fleet, ["node3"])
        assert loaded.ok and len(loaded.nodes[0].answer.added) == 1000
        assert len(transfer(lab, layout, 2)) >= 1000

        _, one = peers_service.set_enabled(
            fleet, ["bulk-500"], False, peers_service.DisabledReason.OPERATOR
        )
        answer = one.nodes[0].answer
        assert one.ok and len(answer.removed) == 1 and answer.unchanged >= 999
        assert answer.elapsed_ms < 1000, f"node time {answer.elapsed_ms} ms"
        _, one = peers_service.set_enabled(fleet, ["bulk-500"], True)
        assert one.ok and len(one.nodes[0].answer.added) == 1
        assert one.nodes[0].answer.elapsed_ms < 1000

        converged = push_service.push(fleet)
        assert converged.ok and all(n.answer.changes == 0 for n in converged.nodes)
    finally:
        _, removed = peers_service.remove_configurations(fleet, names)
        assert removed.ok


def test_apply_on_a_converged_fleet_changes_nothing(lab: Lab, fleet: Fleet) -> None:
    result = push_service.push(fleet)
    assert result.ok
    assert [(n.node, n.answer.changes) for n in result.nodes if n.answer] == [
        (f"node{i}", 0) for i in range(1, LAB_NODES + 1)
    ]


def test_sync_counts_real_traffic_exactly_across_restarts_and_a_crash(
    lab: Lab, layout, fleet: Fleet
) -> None:
    node, client = layout.nodes[2], layout.clients[0]
    with connected(lab, fleet, client, "dave", "node3") as dave:
        key = dave.configuration.public_key
        sync_service.sync(fleet, nodes=["node3"])  # baseline: whatever the handshake cost

        def used() -> int:
            return sum(u.total for u in fleet.store.usage("dave-1"))

        def node_total() -> int:
            rx, tx = transfer(lab, layout, 2)[key]
            return rx + tx

        def synced_total() -> int:
            """Sync node3; return its counters as they stood across the sync. A keepalive (32
            bytes) landing between the sync's read and ours would count for the next sync:
            then sync again. A miscount never settles this way: it stays in the store."""
            for _ in range(5):
                before = node_total()
                assert sync_service.sync(fleet, nodes=["node3"]).ok
                if node_total() == before:
                    return before
            pytest.fail("node3's counters never stood still across a sync")

        assert ping(client.netns, str(node.tunnel_address), count=20)
        assert synced_total() == used()
        assert sync_service.sync(fleet, nodes=["node3"]).bytes_added == 0
        carried = used()

        root(lab, layout, 2, ["systemctl", "restart", "wg-quick@wg0"])
        assert key in transfer(lab, layout, 2)  # restored from the node's peers file
        assert ping_within(client.netns, str(node.tunnel_address))
        assert ping(client.netns, str(node.tunnel_address), count=10)
        assert carried + synced_total() == used()

        # Kill a sync after it fetched the counters and before it committed them.
        assert ping(client.netns, str(node.tunnel_address), count=10)
        crash = textwrap.dedent(f"""
            import os, signal
            from orchestrator.service import sync
            from orchestrator.settings import load_settings
            from orchestrator.service.context import open_fleet
            def die(*args, **kwargs):
                os.kill(os.getpid(), signal.SIGKILL)
            sync.account_observations = die
            with open_fleet(load_settings({str(lab.config_file)!r}), write=True) as fleet:
                sync.sync(fleet, nodes=["node3"])
        """)
        killed = subprocess.run(
            [sys.executable, "-c", crash], capture_output=True, check=False, timeout=120
        )
        assert killed.returncode == -signal.SIGKILL
        assert carried + synced_total() == used()


def test_a_configuration_over_quota_is_cut_off_and_a_topup_lets_it_back(
    lab: Lab, layout, fleet: Fleet
) -> None:
    client = layout.clients[1]
    account(fleet, "erin")
    erin = peers_service.add_configuration(
        fleet, "erin", nodes=["node1", "node2"], quota_bytes=200_000, name="erin-1"
    )
    with tunnel(lab, client, erin.client_configs["node1"]):
        target = str(layout.nodes[0].tunnel_address)
        ping_from(client.netns, target, count=40, interval=0.02, size=8000, wait=1)
        result = wgfleet(lab, "sync", "--json")
        summary = json.loads(result.stdout)
        assert "erin-1" in summary["newly_over_quota"], summary
        assert not fleet.store.configuration("erin-1").enabled
        for index in (0, 1):
            assert erin.configuration.public_key not in transfer(lab, layout, index)
        assert not ping(client.netns, target, count=3)

        peers_service.topup(
            fleet, "erin-1", invoice="INV-ERIN-1", amount="4.99", bytes_granted=10**9
        )
        # The top-up lets it back in the store at once (store-only, issue 23): both nodes are
        # pending, and the sync pushes them (their full sets: no change of its own to send).
        assert fleet.store.configuration("erin-1").enabled
        synced = sync_service.sync(fleet)
        answers = {p.node: p.answer for p in synced.push.nodes if p.ok} if synced.push else {}
        assert {"node1", "node2"} <= set(answers), answers
        assert ping_within(client.netns, target)


def test_usage_check_agrees_with_the_ledger(lab: Lab, deployed: None) -> None:
    result = wgfleet(lab, "usage", "check", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mismatches"] == []


def test_two_syncs_at_once_one_waits_or_exits_3(lab: Lab, deployed: None) -> None:
    from orchestrator.service.lock import fleet_lock

    with fleet_lock(lab.settings):
        busy = wgfleet(lab, "sync")
        assert busy.returncode == 3
        assert busy.stderr.startswith("wgfleet: error: another wgfleet run holds")
        waiting = subprocess.Popen(
            [WGFLEET, "--config", str(lab.config_file), "sync", "--wait"],
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert waiting.poll() is None
    assert waiting.wait(timeout=120) == 0


def test_the_cli_round_trip_of_an_account(lab: Lab, layout, fleet: Fleet, tmp_path: Path) -> None:
    from orchestrator.core.wgquick import parse_wg_quick

    added = wgfleet(
        lab,
        "accounts",
        "add",
        "frank",
        "--device-id",
        "dev-f",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    out = tmp_path / "frank.conf"
    peer = wgfleet(
        lab,
        "--json",
        "peers",
        "add",
        "frank",
        "--nodes",
        "node1,node2",
        "--plan",
        "none",
        "--out",
        str(out),
    )
    assert peer.returncode == 2 and peer.stderr.startswith("wgfleet: error: no plan 'none'")
    peer = wgfleet(
        lab, "--json", "peers", "add", "frank", "--nodes", "node1,node2", "--out", str(out)
    )
    assert peer.returncode == 0, peer.stderr
    data = json.loads(peer.stdout)
    assert "client_configs" not in data  # written to the files only
    for node in ("node1", "node2"):
        path = Path(f"{out}.{node}.conf")
        assert path.stat().st_mode & 0o777 == 0o600
        parsed = parse_wg_quick(path.read_text())
        private = parsed.interface.get("privatekey")
        assert private and private not in (
            lab.settings.data_dir / "wgfleet.db"
        ).read_bytes().decode(errors="replace")
    key = data["public_key"]
    assert key in transfer(lab, layout, 0) and key in transfer(lab, layout, 1)

    first = wgfleet(
        lab, "topup", data["name"], "--bytes", "1000", "--amount", "1.00", "--invoice", "INV-F-1"
    )
    again = wgfleet(
        lab, "topup", data["name"], "--bytes", "1000", "--amount", "1.00", "--invoice", "INV-F-1"
    )
    assert first.returncode == again.returncode == 0
    assert "granted 1000 bytes" in first.stdout and "already recorded" in again.stdout
    assert [t.bytes_granted for t in fleet.store.topups(data["name"])] == [1000]

    plan = wgfleet(lab, "--json", "apply", "--dry-run")
    assert plan.returncode == 0 and all(
        n["added"] == n["removed"] == 0 for n in json.loads(plan.stdout)["nodes"]
    )

    refused = wgfleet(lab, "accounts", "delete", "frank")
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    deleted = wgfleet(lab, "accounts", "delete", "frank", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert key not in transfer(lab, layout, 0) and key not in transfer(lab, layout, 1)
    assert fleet.store.configurations(account="frank") == []
    assert [t.configuration for t in fleet.store.topups() if t.invoice == "INV-F-1"] == [None]
