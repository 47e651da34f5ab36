from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.adapters.keyfiles import ensure_ssh_keypair, new_host_key
from orchestrator.core.inventory import (
    HostKey,
    InventoryHost,
    inventory_hosts,
    key_fingerprint,
    parse_public_key,
    render_inventory,
    render_known_hosts,
)


def test_known_hosts_lines_pin_name_and_address() -> None:
    _private, public = new_host_key()
    key_type, key = parse_public_key(public)
    text = render_known_hosts([HostKey(("node1", "198.18.0.10"), key_type, key)])
    assert text == f"node1,198.18.0.10 ssh-ed25519 {key}\n"


def test_parse_public_key_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an OpenSSH public key"):
        parse_public_key("hello world")


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_fingerprint_matches_openssh(tmp_path: Path) -> None:
    public = ensure_ssh_keypair(tmp_path / "k", "test")
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert key_fingerprint(parse_public_key(public)[1]) == expected


def test_inventory_pins_known_hosts_and_never_learns_keys() -> None:
    inventory = render_inventory(
        "nodes",
        [InventoryHost("node1", ipaddress.IPv4Address("198.18.0.10"), {"x": 1})],
        private_key="/keys/deploy",
        known_hosts="/inv/known_hosts",
    )
    text = yaml.safe_dump(inventory)
    assert "StrictHostKeyChecking=yes" in text
    assert "UserKnownHostsFile=/inv/known_hosts" in text
    assert "UpdateHostKeys=no" in text
    hosts = inventory_hosts(yaml.safe_load(text))
    assert hosts["node1"]["ansible_host"] == "198.18.0.10"
    assert hosts["node1"]["x"] == 1
    assert hosts["node1"]["ansible_ssh_private_key_file"] == "/keys/deploy"


def test_controller_key_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "deploy_ed25519"
    first = ensure_ssh_keypair(path, "wgfleet-deploy")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert first.startswith("ssh-ed25519 ") and first.endswith(" wgfleet-deploy")
    assert ensure_ssh_keypair(path, "wgfleet-deploy") == first
    assert "PRIVATE KEY" not in (tmp_path / "keys" / "deploy_ed25519.pub").read_text()
