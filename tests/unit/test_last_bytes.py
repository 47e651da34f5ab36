"""Retiring a key or an interface counts its last bytes: the node scripts read a leaving peer's
or interface's final counters only once nothing can pass it any more.

The scripts run here for real against a fake `wg` (and `ip`, `systemctl`) that keeps an
interface's state in a file and lets traffic flow through every peer that still has networks
on an up interface each time any of them is called, as time passes on a busy node. The bytes
reported must be the bytes the peer or interface had when it went away.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from orchestrator.adapters.wgkeys import new_keypair
from orchestrator.core.push_protocol import parse_answer
from tests.unit.node_programs import NODE_KEY, load, write_config
from tests.unit.peers_node import INTERFACE, FakeNode

FAKE_TOOLS = r'''
import json, os, sys

state_path, log_path = os.environ["FAKE_STATE"], os.environ["FAKE_LOG"]
with open(state_path) as handle:
    state = json.load(handle)
tool, args = sys.argv[1], sys.argv[2:]
with open(log_path, "a") as log:
    log.write(" ".join([tool, *args]) + "\n")


def gone(name):
    """An interface taken down for good: its peers' counters as they were at that moment."""
    with open(log_path, "a") as log:
        for key, peer in state.pop(name, {"peers": {}})["peers"].items():
            log.write(f"final {name} {key} {peer['rx']} {peer['tx']}\n")
    sys_dir = os.environ.get("FAKE_SYS")
    if sys_dir and os.path.isdir(os.path.join(sys_dir, name)):
        os.rmdir(os.path.join(sys_dir, name))


# Time passes on every call: each peer with networks on an up interface carries traffic.
for iface in state.values():
    if iface["up"]:
        for peer in iface["peers"].values():
            if peer["nets"]:
                peer["rx"] += 1000
                peer["tx"] += 100
if tool == "wg" and args[0] == "show":
    for key, peer in state[args[1]]["peers"].items():
        value = {
            "transfer": f"{peer['rx']}\t{peer['tx']}",
            "allowed-ips": peer["nets"] or "(none)",
            "preshared-keys": peer["psk"] or "(none)",
            "endpoints": "198.18.0.99:40000",
        }.get(args[2], "")
        print(f"{key}\t{value}")
    if args[2] == "listen-port":
        print(51820)
elif tool == "wg" and args[0] == "pubkey":
    sys.stdin.read()
    print("A" * 43 + "=")
elif tool == "wg" and args[0] == "set":
    iface, rest, peer, i = state[args[1]], args[2:], None, 0
    while i < len(rest):
        word = rest[i]
        if word == "peer":
            key = rest[i + 1]
            peer = iface["peers"].setdefault(key, {"nets": "", "psk": None, "rx": 0, "tx": 0})
            i += 2
        elif word == "remove":
            with open(log_path, "a") as log:
                log.write(f"final {args[1]} {key} {peer['rx']} {peer['tx']}\n")
            del iface["peers"][key]
            i += 1
        elif word == "allowed-ips":
            peer["nets"] = ",".join(sorted(n for n in rest[i + 1].split(",") if n))
            i += 2
        elif word == "preshared-key":
            with open(rest[i + 1]) as handle:
                peer["psk"] = handle.read().strip() or None
            i += 2
        else:  # private-key, listen-port, endpoint, persistent-keepalive: a value each
            i += 2
elif tool == "ip" and args[:3] == ["link", "set", "dev"] and args[4] == "down":
    state[args[3]]["up"] = False
elif tool == "ip" and args[:2] == ["link", "del"]:
    gone(args[2])
elif tool == "systemctl" and args[:2] == ["disable", "--now"]:
    gone(args[2].removeprefix("wg-quick@").removesuffix(".service"))
with open(state_path, "w") as handle:
    json.dump(state, handle)
'''


def fake_tools(tmp_path: Path, state: dict[str, object]) -> dict[str, str]:
    """The fake tools on a PATH of their own; returns the environment to run a script in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    code = tmp_path / "fake_tools.py"
    code.write_text(FAKE_TOOLS)
    for tool in ("wg", "ip", "systemctl"):
        path = bin_dir / tool
        path.write_text(f'#!/bin/sh\nexec {sys.executable} {code} {tool} "$@"\n')
        path.chmod(0o755)
    (tmp_path / "state.json").write_text(json.dumps(state))
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_STATE": str(tmp_path / "state.json"),
        "FAKE_LOG": str(tmp_path / "log"),
        "FAKE_SYS": str(tmp_path / "sys"),
    }


def finals(tmp_path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(interface, key) -> the counters a peer had when it went away."""
    found = {}
    for line in (tmp_path / "log").read_text().splitlines():
        if line.startswith("final "):
            _, iface, key, rx, tx = line.split()
            found[(iface, key)] = (int(rx), int(tx))
    return found


def peer(nets: str, rx: int = 0) -> dict[str, object]:
    return {"nets": nets, "psk": None, "rx": rx, "tx": rx // 10}


def test_a_removed_peer_s_counters_are_read_once_nothing_passes_it(tmp_path: Path) -> None:
    """A full push and a delta each remove a peer that carries traffic to the last moment:
    the counters reported are the ones it had when it went (the program runs against the
    fake node of tests/unit/peers_node.py, where traffic flows between any two calls)."""
    stay, leave, later = (new_keypair().public_key for _ in range(3))
    node = FakeNode(tmp_path)
    node.up(
        INTERFACE,
        {
            stay: fake_peer("198.19.1.2/32", 5000),
            leave: fake_peer("198.19.1.3/32", 7000),
            later: fake_peer("198.19.1.4/32", 9000),
        },
    )
    node.busy()
    head = f"wgfleet-peers 1\nmode apply\ninterface {INTERFACE}\n"
    full = f"{head}revision 4\npeer {stay} 198.19.1.2/32 -\npeer {later} 198.19.1.4/32 -\nend\n"
    done = node.run(full)
    answer = parse_answer(done.stdout)
    [removed] = answer.removed
    assert removed.public_key == leave
    assert (removed.rx_bytes, removed.tx_bytes) == node.finals()[f"{INTERFACE} {leave}"]
    assert removed.rx_bytes > 7000  # it did carry traffic while the push ran

    delta = f"{head}base 4\nrevision 5\nremove {later}\nend\n"
    done = node.run(delta)
    answer = parse_answer(done.stdout)
    assert answer.delta, done.stdout
    [removed] = answer.removed
    assert (removed.rx_bytes, removed.tx_bytes) == node.finals()[f"{INTERFACE} {later}"]
    assert removed.rx_bytes > 9000


def fake_peer(nets: str, rx: int) -> dict[str, object]:
    return {"allowed": [nets], "psk": None, "rx": rx, "tx": rx // 10}


def test_a_finished_overlap_s_counters_are_read_once_it_passes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_keypair().public_key
    wg_dir, sys_dir, run_dir = tmp_path / "wireguard", tmp_path / "sys", tmp_path / "run"
    for directory in (wg_dir, sys_dir / "wg0", sys_dir / "wg0n", run_dir):
        directory.mkdir(parents=True)
    (wg_dir / "wg0.conf").write_text("[Interface]\nAddress = 198.19.1.1/24\nListenPort = 51820\n")
    (wg_dir / "wg0n.conf").write_text("[Interface]\nListenPort = 51821\n")
    (wg_dir / "wg0.key").write_text("current\n")
    (wg_dir / "wg0.key.next").write_text("next\n")
    (run_dir / "wg0n.epoch").write_text("tok-n\n")
    env = fake_tools(
        tmp_path,
        {
            "wg0": {"up": True, "peers": {key: peer("198.19.1.2/32", 100)}},
            "wg0n": {"up": True, "peers": {key: peer("198.19.1.2/32", 4000)}},
        },
    )
    config = write_config(
        tmp_path / "node-key.json",
        {"wireguard_dir": str(wg_dir), "epoch_dir": str(run_dir), "epoch_script": "/bin/true"},
    )
    node_key = load(NODE_KEY, "wgfleet_node_key")
    monkeypatch.setattr(node_key, "SYS_NET", str(sys_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SUDO_UID", raising=False)
    monkeypatch.setenv("WGFLEET_NODE_KEY_CONFIG", str(config))
    monkeypatch.setattr(sys, "argv", ["wgfleet-node-key", "wg0", "finish"])
    node_key.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "epoch tok-n"
    reported = tuple(int(n) for n in lines[3].split("\t")[1:])
    assert lines[3].startswith(key) and reported == finals(tmp_path)[("wg0n", key)]
    assert reported[0] > 4000  # it carried traffic until it stopped
    assert not (sys_dir / "wg0n").exists() and "wg0n.conf" not in os.listdir(wg_dir)


@pytest.mark.parametrize(
    ("address", "own"),
    [
        ("198.19.1.1/24", "198.19.1.1/32"),
        ("198.19.1.1/24, fd00:198:19:1::1/64", "198.19.1.1/32, fd00:198:19:1::1/128"),
    ],
)
def test_the_overlap_interface_takes_the_node_s_own_addresses_of_both_families(
    tmp_path: Path, address: str, own: str
) -> None:
    """wg0n (a node key rotation's overlap) carries the node's tunnel addresses as host
    addresses, IPv6 too once the node has its /64, and no subnet route."""
    wg_dir = tmp_path / "wireguard"
    wg_dir.mkdir()
    (wg_dir / "wg0.conf").write_text(
        f"[Interface]\nAddress = {address}\nListenPort = 51820\n"
        "PostUp = wg set %i private-key /etc/wireguard/%i.key\n"
    )
    module = load(NODE_KEY, "wgfleet_node_key")
    paths = module.Paths(str(wg_dir), "/run/x", "/bin/true")
    conf = module.overlap_conf(paths, "wg0", 51821)
    assert f"Address = {own}\n" in conf
    assert "Table = off" in conf
    assert "PostUp = /bin/true %i /run/x\n" in conf  # the epoch program and its directory
    pushed = wg_dir / "wg0.peers"
    assert f"PostUp = [ ! -f {pushed} ] || wg addconf %i {pushed}\n" in conf
    # The static peers of wg0.conf follow, unchanged.
    (wg_dir / "wg0.conf").write_text(
        f"[Interface]\nAddress = {address}\nListenPort = 51820\n\n"
        "[Peer]\nPublicKey = " + "A" * 43 + "=\nAllowedIPs = 198.19.1.9/32\n"
    )
    conf = module.overlap_conf(paths, "wg0", 51821)
    assert conf.endswith("\n[Peer]\nPublicKey = " + "A" * 43 + "=\nAllowedIPs = 198.19.1.9/32\n")
