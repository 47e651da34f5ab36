"""Pinned host keys: read once per file version (plain, port-qualified and hashed names), a pin
replaced whole, refusals that name the node and both keys, and Ansible's OpenSSH forced onto
the pinned file whatever else its command line carries."""

from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from orchestrator.adapters import ssh
from orchestrator.adapters.keyfiles import new_host_key
from orchestrator.adapters.pins import KnownHostsPins
from orchestrator.core.inventory import (
    HostKey,
    key_fingerprint,
    known_host_name,
    parse_public_key,
    pinned_connection_vars,
    replace_pins,
)
from orchestrator.core.playbook_events import PlayRecap, with_refused
from orchestrator.errors import ChangedHostKey, HostKeyError, UnknownHostKey


def _target(known_hosts: Path, address: str, port: int = 22) -> ssh.Target:
    return ssh.Target("n1", address, "wgcollect", Path("/nonexistent"), known_hosts, port=port)


def _blob(line: str) -> str:
    return parse_public_key(line)[1]


def test_each_node_gets_only_its_own_pins(tmp_path: Path) -> None:
    keys = [new_host_key()[1] for _ in range(3)]
    hashed = paramiko.HostKeys.hash_host("198.18.0.12")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        "# pinned by wgfleet\n\n"
        f"198.18.0.10 {keys[0]}\n"
        f"[198.18.0.11]:2222 {keys[1]}\n"
        f"{hashed} {keys[2]}\n"
        f"@cert-authority * {keys[0]}\n"
        f"198.18.0.1* {keys[1]}\n",
        encoding="ascii",
    )
    pins = KnownHostsPins(known_hosts)

    def pinned(address: str, port: int = 22) -> list[str]:
        return [p.key_base64 for p in pins.lookup(known_host_name(address, port))]

    assert pinned("198.18.0.10") == [_blob(keys[0])]
    assert pinned("198.18.0.11", 2222) == [_blob(keys[1])]
    assert pinned("198.18.0.11") == []  # the pin is for port 2222 only
    assert pinned("198.18.0.12") == [_blob(keys[2])]
    assert pinned("198.18.0.13") == []  # neither a CA line nor a wildcard pins a host


def test_a_changed_known_hosts_is_read_again(tmp_path: Path) -> None:
    first, second = new_host_key()[1], new_host_key()[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"198.18.0.10 {first}\n", encoding="ascii")
    pins = KnownHostsPins(known_hosts)
    assert [p.key_base64 for p in pins.lookup("198.18.0.10")] == [_blob(first)]
    known_hosts.write_text(f"198.18.0.10 {second}\n", encoding="ascii")
    os.utime(known_hosts, ns=(1, 1))  # a new version even within the clock's resolution
    assert [p.key_base64 for p in pins.lookup("198.18.0.10")] == [_blob(second)]


def test_pinning_replaces_every_old_pin_of_the_node_and_keeps_the_rest(tmp_path: Path) -> None:
    old, hashed_old, other, new = (new_host_key()[1] for _ in range(4))
    hashed = paramiko.HostKeys.hash_host("198.18.0.10")
    known_hosts = tmp_path / "known_hosts"
    original = (
        "# operator's comment\n"
        f"node1,198.18.0.10 {old}\n"
        f"{hashed} {hashed_old}\n"
        f"node2,198.18.0.11 {other}\n"
        f"@revoked * {other}\n"
    )
    known_hosts.write_text(original, encoding="ascii")
    key_type, blob = parse_public_key(new)
    removed = KnownHostsPins(known_hosts).pin(
        ("node1", "198.18.0.10"), HostKey(("node1", "198.18.0.10"), key_type, blob)
    )
    assert sorted(p.key_base64 for p in removed) == sorted([_blob(old), _blob(hashed_old)])
    assert known_hosts.read_text().splitlines() == [
        "# operator's comment",
        f"node2,198.18.0.11 {other}",
        f"@revoked * {other}",
        f"node1,198.18.0.10 {key_type} {blob}",
    ]
    assert [p.key_base64 for p in KnownHostsPins(known_hosts).lookup("198.18.0.10")] == [blob]
    assert oct(known_hosts.stat().st_mode & 0o777) == "0o644"
    # A file that does not exist yet: the first pin creates it.
    fresh = tmp_path / "new" / "known_hosts"
    KnownHostsPins(fresh).pin(("node1",), HostKey(("node1",), key_type, blob))
    assert fresh.read_text() == f"node1 {key_type} {blob}\n"
    assert replace_pins("", ["x"], HostKey(("x",), key_type, blob)) == (
        f"x {key_type} {blob}\n",
        [],
    )


def test_refusals_name_the_node_the_offered_and_the_pinned_key(tmp_path: Path) -> None:
    pinned_line, offered_line = new_host_key()[1], new_host_key()[1]
    key_type, blob = parse_public_key(offered_line)
    offered_key = paramiko.Ed25519Key(data=base64.b64decode(blob))
    offered_fp = key_fingerprint(blob)
    pinned_fp = key_fingerprint(_blob(pinned_line))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"198.18.0.10 {pinned_line}\n", encoding="ascii")
    target = _target(known_hosts, "198.18.0.10")

    with pytest.raises(ChangedHostKey) as changed:
        ssh.verify_host_key(target, ssh.pins_of(target), offered_key)
    message = str(changed.value)
    assert message.startswith("n1: host key changed: ")
    assert pinned_fp in message and offered_fp in message
    assert f"wgfleet nodes trust n1 --fingerprint {offered_fp}" in message
    assert "\n" not in message

    unpinned = _target(known_hosts, "198.18.0.99")
    with pytest.raises(UnknownHostKey) as unknown:
        ssh.verify_host_key(unpinned, ssh.pins_of(unpinned), offered_key)
    message = str(unknown.value)
    assert message.startswith("n1: no pinned host key for 198.18.0.99 in ")
    assert f"it offers {offered_fp}" in message
    assert f"wgfleet nodes trust n1 --fingerprint {offered_fp}" in message

    # The key that is pinned passes, and a missing pin file is refused before any packet.
    known_hosts.write_text(f"198.18.0.10 {offered_line}\n", encoding="ascii")
    os.utime(known_hosts, ns=(2, 2))
    ssh.verify_host_key(target, ssh.pins_of(target), offered_key)
    with pytest.raises(HostKeyError, match=r"^n1: no pinned known_hosts file at "):
        ssh.check_host_key(_target(tmp_path / "missing", "198.18.0.10"))
    assert key_type == "ssh-ed25519"


def _forced(tmp_path: Path, known_hosts: str = "/pins/known hosts%h") -> dict[str, object]:
    return pinned_connection_vars(
        known_hosts=known_hosts,
        private_key="/keys/deploy_ed25519",
        control_dir=str(tmp_path / "cp"),
        executables={"ssh": "/usr/bin/ssh", "sftp": "/usr/bin/sftp", "scp": "/usr/bin/scp"},
    )


def test_ansible_is_forced_onto_openssh_and_every_other_argument_is_emptied(
    tmp_path: Path,
) -> None:
    forced = _forced(tmp_path)
    assert forced["ansible_connection"] == "ansible.builtin.ssh"
    for name in (
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
        "ansible_sftp_extra_args",
        "ansible_scp_extra_args",
        "ansible_ssh_private_key",
        "ansible_private_key",
    ):
        assert forced[name] == "", name
    assert forced["ansible_host_key_checking"] is True
    assert forced["ansible_ssh_host_key_checking"] is True
    assert forced["ansible_ssh_private_key_file"] == "/keys/deploy_ed25519"
    args = shlex.split(str(forced["ansible_ssh_args"]))
    assert args[:2] == ["-F", "/dev/null"]
    assert 'UserKnownHostsFile="/pins/known hosts%%h"' in args  # one path, no token expanded
    assert 'ControlPath="' + str(tmp_path / "cp") + '/%C"' in args
    with pytest.raises(ValueError, match="quote"):
        _forced(tmp_path, known_hosts='/pins/"evil')


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
def test_openssh_keeps_the_pinned_options_whatever_follows_them(tmp_path: Path) -> None:
    """What Ansible appends after ``ssh_args`` (an inventory's ``-o StrictHostKeyChecking=no``,
    its own known_hosts, a DNS or command source of keys) cannot loosen the pins: OpenSSH keeps
    the first value of every option. Checked with OpenSSH's own resolver (``ssh -G``), which
    connects to nothing."""
    forced = _forced(tmp_path, known_hosts=str(tmp_path / "pins"))
    hostile = [
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/root/.ssh/known_hosts",
        "-o", "GlobalKnownHostsFile=/etc/ssh/ssh_known_hosts",
        "-o", "KnownHostsCommand=/bin/echo 198.18.0.10 ssh-ed25519 AAAA",
        "-o", "VerifyHostKeyDNS=yes",
        "-o", "UpdateHostKeys=yes",
        "-o", "ControlPath=/tmp/elsewhere/%C",
        "-o", "IdentityAgent=/tmp/agent.sock",
    ]  # fmt: skip
    argv = ["ssh", *shlex.split(str(forced["ansible_ssh_args"])), *hostile, "-G", "198.18.0.10"]
    result = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30)
    config = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert config["stricthostkeychecking"] == "true"
    assert config["userknownhostsfile"] == str(tmp_path / "pins")
    assert config["globalknownhostsfile"] == "/dev/null"
    assert config["verifyhostkeydns"] == "false"
    assert config["updatehostkeys"] == "false"
    assert config.get("knownhostscommand", "none") == "none"
    assert config["controlpath"].startswith(str(tmp_path / "cp") + "/")  # %C expanded
    assert config["identityagent"] == "none"
    assert config["identitiesonly"] == "yes"
    assert config["batchmode"] == "yes"


def test_refused_hosts_join_the_recap_as_unreachable() -> None:
    recap = with_refused(PlayRecap(), {"node2": "host key changed: pins A, offered B"})
    assert recap.failed_hosts == ["node2"]
    assert recap.host("node2").status == "unreachable"
    assert recap.host("node2").error == "host key changed: pins A, offered B"
    assert with_refused(recap, {}) is recap
