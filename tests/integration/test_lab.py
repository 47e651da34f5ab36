"""The lab fleet is real: nodes boot systemd, answer pinned SSH, and clients reach them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.adapters import keyfiles, ssh
from orchestrator.adapters.lab.clients import ping_from
from orchestrator.core.lab_layout import client_tunnel_address, plan_layout
from orchestrator.errors import AuthenticationFailed, HostKeyError, NodeUnreachable, UsageError
from orchestrator.service import lab as lab_service
from tests.conftest import LAB_CLIENTS, LAB_NODES, Lab
from tests.integration.fleet_lab import hand_made_config, pinned_ssh_options, tunnel, wg_keypair

pytestmark = pytest.mark.lab


def layout(lab: Lab):
    return plan_layout(lab.settings.lab.name, lab.settings.lab.subnet, LAB_NODES, LAB_CLIENTS)


def openssh(lab: Lab, address: str, *command: str, known_hosts: Path | None = None):
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(lab.deploy_key),
            *pinned_ssh_options(known_hosts or lab.known_hosts),
            "-o",
            "ConnectTimeout=5",
            f"root@{address}",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_openssh_with_generated_key_and_pinned_known_hosts_reaches_every_node(lab: Lab) -> None:
    for node in layout(lab).nodes:
        result = openssh(lab, str(node.underlay), "hostname; systemctl is-system-running")
        assert result.returncode in (0, 1), result.stderr  # 1: degraded, still an answer
        hostname, state = result.stdout.split()
        assert hostname == node.name
        assert state in ("running", "degraded")


def test_nodes_boot_their_own_systemd_with_distinct_identities(lab: Lab) -> None:
    seen_ids, seen_keys = set(), set()
    for node in layout(lab).nodes:
        target = lab_service.node_target(lab.settings, node)
        with ssh.NodeConnection(target) as connection:
            pid1 = connection.run(["cat", "/proc/1/comm"]).stdout.strip()
            machine_id = connection.run(["cat", "/etc/machine-id"]).stdout.strip()
            host_key = connection.run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.split()[
                1
            ]
        assert pid1 == "systemd"
        seen_ids.add(machine_id)
        seen_keys.add(host_key)
    assert len(seen_ids) == LAB_NODES
    assert len(seen_keys) == LAB_NODES


def test_inventory_and_known_hosts_pin_each_node(lab: Lab) -> None:
    inventory = yaml.safe_load((lab.settings.inventory / "hosts.yml").read_text())
    hosts = inventory["all"]["children"]["nodes"]["hosts"]
    assert sorted(hosts) == [f"node{i}" for i in range(1, LAB_NODES + 1)]
    lines = lab.known_hosts.read_text().splitlines()
    assert len(lines) == LAB_NODES
    for node in layout(lab).nodes:
        assert any(line.startswith(f"{node.name},{node.underlay} ssh-ed25519 ") for line in lines)


def test_ansible_uses_the_pinned_inventory(lab: Lab) -> None:
    ansible = Path(subprocess.sys.executable).with_name("ansible")
    result = subprocess.run(
        [
            str(ansible),
            "-i",
            str(lab.settings.inventory / "hosts.yml"),
            "nodes",
            "-m",
            "ansible.builtin.command",
            "-a",
            "hostname",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for node in layout(lab).nodes:
        assert f"{node.name} | CHANGED" in result.stdout


def test_client_namespace_reaches_its_node_but_nothing_else(lab: Lab) -> None:
    client = layout(lab).clients[0]
    node = layout(lab).nodes[0]
    ping = subprocess.run(
        ["ip", "netns", "exec", client.netns, "ping", "-c", "1", "-W", "2", str(node.underlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # Its one way out is a default route to the lab internet, which forwards nothing (see
    # test_lab_inet.py): never to the host.
    routes = subprocess.run(
        ["ip", "-n", client.netns, "route", "show", "default"],
        capture_output=True,
        text=True,
        check=True,
    )
    internet = layout(lab).internet
    assert (
        routes.stdout.split()
        == f"default via {internet.underlay} dev eth0 metric 1000 onlink".split()
    )


def test_nodes_refuse_a_key_that_is_not_the_controllers(lab: Lab, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_ed25519"
    keyfiles.ensure_ssh_keypair(stranger, "stranger")
    node = layout(lab).nodes[0]
    target = lab_service.node_target(lab.settings, node)
    with pytest.raises(AuthenticationFailed, match=node.name):
        ssh.run_on(ssh.Target(**{**target.__dict__, "key_file": stranger}), ["true"])


def test_password_login_is_disabled(lab: Lab) -> None:
    node = layout(lab).nodes[0]
    result = subprocess.run(
        [
            "ssh",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            f"UserKnownHostsFile={lab.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            f"root@{node.underlay}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_a_changed_host_key_is_refused_naming_the_node(lab: Lab) -> None:
    node = layout(lab).nodes[-1]
    target = lab_service.node_target(lab.settings, node)
    key_path = "/etc/ssh/ssh_host_ed25519_key"
    private, public = keyfiles.new_host_key()
    with ssh.NodeConnection(target) as connection:
        original = connection.run(["cat", key_path]).stdout
        original_pub = connection.run(["cat", key_path + ".pub"]).stdout
        connection.run(["sh", "-c", f"umask 077; cat > {key_path}"], stdin=private.decode())
        connection.run(["sh", "-c", f"cat > {key_path}.pub"], stdin=public + "\n")
        connection.run(["systemctl", "restart", "ssh"])
    try:
        with pytest.raises(HostKeyError, match=rf"^{node.name}: host key changed"):
            ssh.run_on(target, ["true"])
        refused = openssh(lab, str(node.underlay), "true")
        assert refused.returncode == 255
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    finally:
        # Put the pinned key back through the node's disk: our own key is refused now.
        merged = lab.settings.lab.state_dir / "nodes" / node.name / "merged"
        (merged / key_path.lstrip("/")).write_text(original)
        (merged / (key_path.lstrip("/") + ".pub")).write_text(original_pub)
        lab_service.node_stop(lab.settings, node.name)
        lab_service.node_start(lab.settings, node.name)
    assert ssh.run_on(target, ["true"]).status == 0


def test_an_unpinned_node_is_refused(lab: Lab, tmp_path: Path) -> None:
    node = layout(lab).nodes[0]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    target = lab_service.node_target(lab.settings, node)
    with pytest.raises(HostKeyError, match=rf"^{node.name}: no pinned host key"):
        ssh.run_on(ssh.Target(**{**target.__dict__, "known_hosts": empty}), ["true"])


def test_a_client_pushes_real_traffic_through_a_wireguard_tunnel(lab: Lab) -> None:
    lay = layout(lab)
    node, client = lay.nodes[0], lay.clients[0]
    node_private, node_public = wg_keypair()
    client_private, client_public = wg_keypair()
    address = client_tunnel_address(node, client)
    target = lab_service.node_target(lab.settings, node)
    with ssh.NodeConnection(target) as connection:
        connection.run(["sh", "-c", "umask 077; cat > /run/wgtest.key"], stdin=node_private)
        connection.run("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go wgtest")
        connection.run(
            [
                "wg",
                "set",
                "wgtest",
                "listen-port",
                "51999",
                "private-key",
                "/run/wgtest.key",
                "peer",
                client_public,
                "allowed-ips",
                f"{address}/32",
            ]
        )
        connection.run(["ip", "addr", "add", f"{node.tunnel_address}/24", "dev", "wgtest"])
        connection.run(["ip", "link", "set", "wgtest", "up"])
    config = hand_made_config(client_private, address, node, node_public, 51999)
    try:
        with tunnel(lab, client, config) as pid:
            assert pid > 0
            # The first packets wait for the handshake; on a busy machine all three can be lost.
            for _attempt in range(5):
                ping = ping_from(client.netns, str(node.tunnel_address))
                if ping.returncode == 0:
                    break
            assert ping.returncode == 0, ping.stdout + ping.stderr
            with ssh.NodeConnection(target) as connection:
                transfer = connection.run(["wg", "show", "wgtest", "transfer"]).stdout.split()
            assert transfer[0] == client_public
            assert int(transfer[1]) > 0 and int(transfer[2]) > 0
    finally:
        with ssh.NodeConnection(target) as connection:
            connection.run(["ip", "link", "del", "wgtest"], check=False)
            connection.run(["rm", "-f", "/run/wgtest.key"], check=False)
    status = lab_service.lab_status(lab.settings, probe=False)
    assert all(c.tunnel_pid is None for c in status.clients)


def test_a_stopped_node_is_unreachable_by_name_and_comes_back_with_its_identity(lab: Lab) -> None:
    node = layout(lab).nodes[1]
    target = lab_service.node_target(lab.settings, node)
    before = ssh.run_on(target, ["cat", "/etc/machine-id"]).stdout
    lab_service.node_stop(lab.settings, node.name)
    try:
        status = lab_service.lab_status(lab.settings)
        assert {n.name: n.running for n in status.nodes}[node.name] is False
        assert not status.healthy
        stopped_target = ssh.Target(**{**target.__dict__, "timeout": 2.0})
        with pytest.raises(NodeUnreachable, match=rf"^{node.name}: "):
            ssh.run_on(stopped_target, ["true"])
    finally:
        started = time.monotonic()
        lab_service.node_start(lab.settings, node.name)
    assert time.monotonic() - started < 60
    assert ssh.run_on(target, ["cat", "/etc/machine-id"]).stdout == before
    assert lab_service.lab_status(lab.settings).healthy


def test_lab_up_again_does_nothing_harmful(lab: Lab) -> None:
    pids = {n.name: n.pid for n in lab_service.lab_status(lab.settings, probe=False).nodes}
    status = lab_service.lab_up(lab.settings, LAB_NODES, LAB_CLIENTS)
    assert status.messages == ("lab is already up; nothing to do",)
    assert {n.name: n.pid for n in status.nodes} == pids
    with pytest.raises(UsageError, match="already up with 3 nodes"):
        lab_service.lab_up(lab.settings, LAB_NODES + 1, LAB_CLIENTS)
