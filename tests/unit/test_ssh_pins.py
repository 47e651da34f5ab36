"""Pinned host keys: read once per known_hosts version, plain, port-qualified and hashed names."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko

from orchestrator.adapters import ssh
from orchestrator.adapters.keyfiles import new_host_key


def _target(known_hosts: Path, address: str, port: int = 22) -> ssh.Target:
    return ssh.Target("n1", address, "wgcollect", Path("/nonexistent"), known_hosts, port=port)


def test_each_node_gets_only_its_own_pins(tmp_path: Path) -> None:
    keys = [new_host_key()[1] for _ in range(3)]
    hashed = paramiko.HostKeys.hash_host("198.18.0.12")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "# pinned by wgfleet\n\n"
        f"198.18.0.10 {keys[0]}\n"
        f"[198.18.0.11]:2222 {keys[1]}\n"
        f"{hashed} {keys[2]}\n",
        encoding="ascii",
    )

    def pins(address: str, port: int = 22) -> list[str]:
        return [k.get_base64() for k in ssh.pinned_keys(_target(known_hosts, address, port))]

    assert pins("198.18.0.10") == [keys[0].split()[1]]
    assert pins("198.18.0.11", 2222) == [keys[1].split()[1]]
    assert pins("198.18.0.11") == []  # the pin is for port 2222 only
    assert pins("198.18.0.12") == [keys[2].split()[1]]
    assert pins("198.18.0.13") == []


def test_a_changed_known_hosts_is_read_again(tmp_path: Path) -> None:
    first, second = new_host_key()[1], new_host_key()[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"198.18.0.10 {first}\n", encoding="ascii")
    target = _target(known_hosts, "198.18.0.10")
    assert [k.get_base64() for k in ssh.pinned_keys(target)] == [first.split()[1]]
    known_hosts.write_text(f"198.18.0.10 {second}\n", encoding="ascii")
    os.utime(known_hosts, ns=(1, 1))  # a new version even within the clock's resolution
    assert [k.get_base64() for k in ssh.pinned_keys(target)] == [second.split()[1]]
