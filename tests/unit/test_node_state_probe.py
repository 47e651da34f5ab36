"""The node state probe, run as the node runs it (python3 reading the script on stdin) over a
directory tree standing in for a node's root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.adapters.node_state import PROBE_SCRIPT
from orchestrator.core.converge import drifted_sections, state_fingerprint

SECRET = "sEcReT-private-key-material"


def probe(root: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-"],
        input=PROBE_SCRIPT.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        env={**os.environ, "WGFLEET_PROBE_ROOT": str(root)},
        check=True,
        timeout=60,
    )
    return done.stdout


@pytest.fixture
def node(tmp_path: Path) -> Path:
    for directory in ("etc/ssh", "etc/wireguard", "usr/local/sbin", "var/log", "home/ann"):
        (tmp_path / directory).mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text("PermitRootLogin prohibit-password\n")
    (tmp_path / "etc/wireguard/wg0.key").write_text(SECRET + "\n")
    os.chmod(tmp_path / "etc/wireguard/wg0.key", 0o600)
    (tmp_path / "etc/wireguard/wg0.conf").write_text("[Interface]\n")
    (tmp_path / "etc/wireguard/wg0.peers").write_text("peer-set-of-the-last-push\n")
    (tmp_path / "etc/shells").write_text("/bin/sh\n")
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\n"
        "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
    )
    (tmp_path / "home/ann/.profile").write_text("umask 022\n")
    (tmp_path / "usr/local/sbin/wgfleet-peers").write_text("#!/usr/bin/python3\n")
    return tmp_path


def test_the_probe_is_stable_and_prints_hashes_never_contents(node: Path) -> None:
    first = probe(node)
    assert first == probe(node)
    assert SECRET not in first
    assert "/etc/wireguard/wg0.key file 0600" in first
    sections = state_fingerprint(first)
    assert {"/etc", "/etc/ssh", "/etc/wireguard", "/usr/local", "/var/log", "homes"} <= set(
        sections
    )


def test_content_mode_and_foreign_files_are_drift(node: Path) -> None:
    before = state_fingerprint(probe(node))
    (node / "etc/ssh/sshd_config").write_text("PermitRootLogin yes\n")
    assert drifted_sections(before, state_fingerprint(probe(node))) == ["/etc/ssh"]

    before = state_fingerprint(probe(node))
    os.chmod(node / "usr/local/sbin/wgfleet-peers", 0o777)
    (node / "var/log/syslog").write_text("a log line\n")
    (node / "home/ann/.bash_history").write_text("ls\n")
    assert drifted_sections(before, state_fingerprint(probe(node))) == [
        "/usr/local",
        "/var/log",
        "homes",
    ]


def test_the_peer_set_a_push_keeps_is_not_deploy_state(node: Path) -> None:
    before = state_fingerprint(probe(node))
    (node / "etc/wireguard/wg0.peers").write_text("another peer set\n")
    (node / "etc/wireguard/wg0.handover").write_text("old new\n")
    assert drifted_sections(before, state_fingerprint(probe(node))) == []
    (node / "etc/wireguard/wg0.conf").write_text("[Interface]\nListenPort = 1\n")
    assert drifted_sections(before, state_fingerprint(probe(node))) == ["/etc/wireguard"]


def test_a_missing_tree_is_a_fact(node: Path) -> None:
    (node / "var/log").rmdir()
    assert "/var/log absent" in probe(node)


def test_a_timer_is_armed_whether_its_service_runs_or_not() -> None:
    from orchestrator.adapters import node_state_probe as node_probe

    waiting = node_probe.instance_line("wgfleet-watch@wg0.timer", "active", "waiting")
    running = node_probe.instance_line("wgfleet-watch@wg0.timer", "active", "running")
    assert waiting == running == "instance wgfleet-watch@wg0.timer active"
    # A service's sub-state is still part of the fact: a stopped wg-quick is drift.
    assert node_probe.instance_line("wg-quick@wg0.service", "active", "exited").endswith(
        " active exited"
    )


def test_units_between_states_are_read_again_until_they_settle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestrator.adapters import node_state_probe as node_probe

    reads = iter(
        [
            ["file unbound.service enabled", "active unbound.service reloading"],
            ["instance wg-quick@wg0.service activating start"],
            ["file unbound.service enabled", "active unbound.service active"],
        ]
    )
    monkeypatch.setattr(node_probe, "unit_lines", lambda: next(reads))
    monkeypatch.setattr(node_probe, "SETTLE_PAUSE_SECONDS", 0)
    assert list(node_probe.units()) == [
        "file unbound.service enabled",
        "active unbound.service active",
    ]
    # A unit stuck between states is recorded as it is after the last try (then it is drift).
    monkeypatch.setattr(node_probe, "unit_lines", lambda: ["active unbound.service deactivating"])
    assert list(node_probe.units()) == ["active unbound.service deactivating"]
