"""Pinned host keys on the deployed session lab: a node whose host key was replaced is refused
by every command that reaches nodes, naming it and both fingerprints, while the other nodes go
on; a node with no pin at all is a first contact that names the key it offers; `nodes trust`
brings it back. Ansible trusts only the pinned file even for a hand-written production
inventory that says otherwise, and its runs leave no secret on the controller's disk.

Every test puts the lab back as it found it (the node's own host key, the pin file byte for
byte, no configuration of its own), also when it fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.adapters import ansible, keyfiles, ssh
from orchestrator.core.inventory import parse_public_key, public_key_fingerprint
from orchestrator.core.lab_layout import LabNode
from orchestrator.service import deploy as deploy_service
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import open_fleet
from tests.conftest import Lab
from tests.integration.fleet_lab import account, wgfleet
from tests.worker_space import unreached_node_address

pytestmark = pytest.mark.lab

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
ACCOUNT = "pinning"
CONFIGURATION = "pinning-1"
PING_PLAYBOOK = """\
- name: Reach the nodes
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def install_host_key(lab: Lab, node: LabNode, private: str, public: str) -> None:
    """Give the node this host key (as root over the deploy key, trusting whatever key it
    offers now, as only a test may) and restart its sshd, which answers with it at once."""
    target = lab_service.node_target(lab.settings, node)
    key_type, blob = ssh.offered_host_key(target)
    with tempfile.TemporaryDirectory() as scratch:
        pins = Path(scratch) / "known_hosts"
        pins.write_text(f"{node.underlay} {key_type} {blob}\n", encoding="ascii")
        with ssh.NodeConnection(dataclasses.replace(target, known_hosts=pins)) as connection:
            connection.run(["sh", "-c", f"umask 077; cat > {HOST_KEY}"], stdin=private)
            connection.run(["sh", "-c", f"cat > {HOST_KEY}.pub"], stdin=public)
            connection.run(["systemctl", "restart", "ssh"])
    assert ssh.offered_host_key(target)[1] == parse_public_key(public)[1]


def refusal(result: subprocess.CompletedProcess[str], node: str, *fingerprints: str) -> str:
    """The one stderr line that refuses ``node`` naming every fingerprint; exit code 1."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [
        line
        for line in result.stderr.splitlines()
        if node in line and all(f in line for f in fingerprints)
    ]
    assert lines, result.stderr
    assert "REMOTE HOST IDENTIFICATION" not in result.stdout + result.stderr
    return lines[0]


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture
def replaceable_node(lab: Lab, layout, deployed: None) -> Iterator[dict[str, Any]]:
    """node2 with a configuration on it and node1, and a guarantee: whatever happens, node2
    serves its own host key again, the pin file is restored byte for byte and the
    configuration is gone from the store and the nodes."""
    node = layout.nodes[1]
    target = lab_service.node_target(lab.settings, node)
    pins_before = lab.known_hosts.read_bytes()
    with ssh.NodeConnection(target) as connection:
        private = connection.run(["cat", HOST_KEY]).stdout
        public = connection.run(["cat", HOST_KEY + ".pub"]).stdout
    with open_fleet(lab.settings, write=True) as fleet:
        account(fleet, ACCOUNT)
        peers_service.add_configuration(
            fleet, ACCOUNT, nodes=[layout.nodes[0].name, node.name], name=CONFIGURATION
        )
    try:
        yield {
            "node": node,
            "private": private,
            "public": public,
            "fingerprint": public_key_fingerprint(public),
        }
    finally:
        if ssh.offered_host_key(target)[1] != parse_public_key(public)[1]:
            install_host_key(lab, node, private, public)
        lab.known_hosts.write_bytes(pins_before)
        with open_fleet(lab.settings, write=True) as fleet:
            deleted = peers_service.delete_account(fleet, ACCOUNT)
        assert deleted.push.ok, deleted.push.as_dict()


def test_a_replaced_host_key_is_refused_everywhere_until_the_operator_trusts_it(
    lab: Lab, layout, replaceable_node: dict[str, Any]
) -> None:
    node: LabNode = replaceable_node["node"]
    name, pinned = node.name, replaceable_node["fingerprint"]
    others = sorted(n.name for n in layout.nodes if n.name != name)
    private, public = keyfiles.new_host_key()
    offered = public_key_fingerprint(public)
    install_host_key(lab, node, private.decode(), public + "\n")

    # A changed key: every command that reaches nodes refuses it, naming both keys.
    deployed = wgfleet(lab, "--json", "deploy", "--limit", name)
    refusal(deployed, name, pinned, offered)
    summary = json.loads(deployed.stdout)
    assert summary["failed_hosts"] == [name]
    assert summary["hosts"][name]["status"] == "unreachable"
    assert summary["hosts"][name]["error"].startswith("host key changed: ")
    assert summary["hosts"][name]["ok"] == 0  # Ansible never ran a task there
    refusal(wgfleet(lab, "deploy", "--limit", f"{name}*"), name, pinned, offered)  # a pattern
    refusal(wgfleet(lab, "audit", "--limit", name), name, pinned, offered)
    synced = wgfleet(lab, "--json", "sync")
    refusal(synced, name, pinned, offered)
    assert json.loads(synced.stdout)["nodes_ok"] == others
    pushed = wgfleet(lab, "--json", "apply")
    refusal(pushed, name, pinned, offered)
    assert sorted(n["node"] for n in json.loads(pushed.stdout)["nodes"] if n["ok"]) == others
    refusal(wgfleet(lab, "peers", "disable", CONFIGURATION), name, pinned, offered)
    refusal(wgfleet(lab, "diagnose", "status", name), name, pinned, offered)
    refusal(wgfleet(lab, "keys", "rotate", "ssh", "push"), name, pinned, offered)
    refusal(wgfleet(lab, "lab", "status"), name, pinned, offered)

    # No pin at all: a first contact, refused with the key it offers and how to pin it.
    lab.known_hosts.write_text(
        "".join(
            line + "\n"
            for line in lab.known_hosts.read_text().splitlines()
            if not line.startswith(f"{name},")
        )
    )
    trust_hint = f"wgfleet nodes trust {name} --fingerprint {offered}"
    first = refusal(wgfleet(lab, "sync"), name, offered)
    assert "no pinned host key" in first and trust_hint in first
    first = refusal(wgfleet(lab, "deploy", "--limit", name), name, offered)
    assert "no pinned host key" in first and trust_hint in first
    assert pinned not in first

    # The operator checked the key on the console: trusted, every command works again.
    asked = wgfleet(lab, "nodes", "trust", name)
    assert asked.returncode == 2 and f"{name} offers {offered}" in asked.stderr
    trusted = ok(wgfleet(lab, "--json", "nodes", "trust", name, "--fingerprint", offered))
    assert json.loads(trusted.stdout)["fingerprint"] == offered
    assert json.loads(ok(wgfleet(lab, "--json", "sync")).stdout)["nodes_failed"] == {}
    ok(wgfleet(lab, "apply"))
    ok(wgfleet(lab, "peers", "enable", CONFIGURATION))
    ok(wgfleet(lab, "keys", "rotate", "psk", CONFIGURATION, "--out", "-"))
    ok(wgfleet(lab, "diagnose", "status", name))
    ok(wgfleet(lab, "lab", "status"))
    ok(wgfleet(lab, "audit", "--limit", name))

    # Its own key comes back: a change again, refused, trusted; the deploy finds it unchanged.
    install_host_key(lab, node, replaceable_node["private"], replaceable_node["public"])
    refusal(wgfleet(lab, "deploy", "--limit", name), name, offered, pinned)
    ok(wgfleet(lab, "nodes", "trust", name, "--fingerprint", pinned))
    again = json.loads(ok(wgfleet(lab, "--json", "deploy", "--limit", name)).stdout)
    assert again["hosts"][name]["status"] in ("verified", "ok", "changed"), again


def node_pin(lab: Lab, node: LabNode) -> str:
    """The pin file's line for ``node``, as `lab up` wrote it."""
    return next(
        line for line in lab.known_hosts.read_text().splitlines() if line.startswith(node.name)
    )


def ping_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "playbooks").mkdir(parents=True)
    (project / "roles").mkdir()
    (project / "playbooks" / "ping.yml").write_text(PING_PLAYBOOK)
    return project


def test_ansible_trusts_only_the_pinned_file_whatever_a_production_inventory_says(
    lab: Lab, layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = layout.nodes[0]
    good = node_pin(lab, node)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    # Everything the operator's side says: trust this node, whatever its key.
    (home / ".ssh" / "known_hosts").write_text(f"{node.underlay} {good.split(' ', 1)[1]}\n")
    (home / ".ssh" / "config").write_text("Host *\n  StrictHostKeyChecking no\n")
    (home / ".ansible.cfg").write_text(
        "[defaults]\nhost_key_checking = False\n[ssh_connection]\n"
        "ssh_args = -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o StrictHostKeyChecking=no")
    loose = f"-o StrictHostKeyChecking=no -o UserKnownHostsFile={home}/.ssh/known_hosts"
    common = {
        "ansible_host": str(node.underlay),
        "ansible_user": "root",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_host_key_checking": False,
    }
    inventory = tmp_path / "production.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "prod-ssh": {
                            **common,
                            "ansible_ssh_common_args": loose,
                            "ansible_ssh_extra_args": "-o StrictHostKeyChecking=no",
                            "ansible_ssh_args": loose,
                        },
                        "prod-paramiko": {**common, "ansible_connection": "paramiko"},
                        "prod-local": {**common, "ansible_connection": "local"},
                    }
                }
            }
        )
    )
    project = ping_project(tmp_path)
    stranger = keyfiles.new_host_key()[1]
    pins = {
        "lacks the node": f"{unreached_node_address(1)} {stranger}\n",
        "differs from the node": f"{node.underlay} {stranger}\n",
        "holds the node": f"{good}\n",
    }
    results = {}
    for case, text in pins.items():
        pinned = tmp_path / f"pins-{len(results)}"
        pinned.write_text(text)
        run = ansible.run_playbook(
            project_root=project,
            work_dir=tmp_path / "work",
            inventory=inventory,
            playbook="ping.yml",
            known_hosts=pinned,
            private_key=lab.deploy_key,
        )
        results[case] = {host: h.status for host, h in run.recap.hosts.items()}
        if case != "holds the node":
            errors = " ".join(h.error for h in run.recap.hosts.values())
            assert "Host key verification failed" in errors or "IDENTIFICATION HAS CHANGED" in (
                errors
            ), (case, errors)
    everywhere = {"prod-ssh", "prod-paramiko", "prod-local"}
    assert results == {
        "lacks the node": dict.fromkeys(everywhere, "unreachable"),
        "differs from the node": dict.fromkeys(everywhere, "unreachable"),
        "holds the node": dict.fromkeys(everywhere, "ok"),
    }
    assert list((tmp_path / "work").iterdir()) == []  # each run took its directory with it


def ansible_processes() -> list[Path]:
    """This test's own ansible-playbook (a child of this process, by ansible-runner)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and b"ansible-playbook" in (entry / "cmdline").read_bytes():
                found.append(entry)
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_ansible_runs_leave_no_secret_on_the_controller(
    lab: Lab, layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Canaries in the settings (the store's password) and in the environment (a database
    password, a token): none of them reaches any file of a run, while it runs or after, nor
    Ansible's environment; neither do the controller's private keys."""
    canaries = {
        "store password": "canary-store-password-6f1d2e",
        "PGPASSWORD": "canary-pgpassword-9a8b7c",
        "token": "canary-token-3c4d5e",
    }
    monkeypatch.setenv("PGPASSWORD", canaries["PGPASSWORD"])
    monkeypatch.setenv("WGFLEET_TEST_SECRET_TOKEN", canaries["token"])
    settings = dataclasses.replace(
        lab.settings,
        project_root=ping_project(tmp_path),
        store_url=f"postgresql://wgfleet:{canaries['store password']}@/wgfleet?host=/nonexistent",
    )
    private_keys = [
        "".join(path.read_text().splitlines()[1:3])
        for path in (settings.ssh.deploy_key, settings.ssh.collector_key, settings.ssh.push_key)
    ]
    work_dir = deploy_service.ansible_work_dir(settings)
    seen: dict[str, bytes] = {}

    def snapshot(_recap: object, event: dict[str, Any]) -> None:
        if event.get("event") != "runner_on_ok":
            return
        roots = [work_dir, *Path(tempfile.gettempdir()).glob("wgfleet-cp-*")]
        for root in roots:
            for path in root.rglob("*"):
                if path.is_file():
                    seen[str(path)] = path.read_bytes()
        for process in ansible_processes():
            for part in ("environ", "cmdline"):
                with contextlib.suppress(OSError):
                    seen[f"{process}/{part}"] = (process / part).read_bytes()

    options = ansible.PlaybookOptions(limit=layout.nodes[0].name)
    run = deploy_service.run_fleet_playbook(settings, "ping.yml", options, on_update=snapshot)
    assert run.status == "successful", run.recap
    assert any(path.endswith("/command") for path in seen), sorted(seen)
    assert any(path.endswith("/environ") for path in seen), sorted(seen)
    text = b"\n".join(seen.values()).decode("latin-1")
    for label, canary in canaries.items():
        assert canary not in text, label
    for key in private_keys:
        assert key not in text
    after = [path for path in work_dir.rglob("*")]
    assert after == [], after
