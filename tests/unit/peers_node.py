"""The node's `wgfleet-peers` (roles/peers_access/files/wgfleet-peers) run here as a plain
program with a test config, and a fake node for its live paths: a `wg` and an `ip` that keep
interfaces, peers and routes in a JSON file with WireGuard's rules (an allowed-ip set on one peer
leaves the peer that held it), and a /sys/class/net of their own.

The fake node exists to reach what a real node cannot be made to do on demand (a `wg set` that
fails half-way); the same requests run against real nodes in tests/integration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parents[2] / "roles" / "peers_access" / "files" / "wgfleet-peers"
INTERFACE = "wgt9"
NETWORK = "198.19.1.0/24"
OWN_ADDRESS = "198.19.1.1"


def peers_config(base: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "comment": "test",
        "interfaces": [INTERFACE],
        "tunnel_networks": {"ipv4": [NETWORK], "ipv6": []},
        "tunnel_addresses": {"ipv4": [OWN_ADDRESS], "ipv6": []},
        "wireguard_dir": str(base / "wireguard"),
        "epoch_dir": str(base / "run"),
        "max_peers": 100,
        "max_line_bytes": 512,
        "max_request_bytes": 65536,
        "request_timeout_seconds": 60,
    }
    config.update(overrides)
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config))
    path.chmod(0o644)
    return path


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without sudo's variables (the script ignores its config
    variable under sudo), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    env.update(extra)
    return env


def run_script(
    config: Path, request: str | bytes, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    data = request.encode() if isinstance(request, str) else request
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=data,
        capture_output=True,
        env=clean_environment(WGFLEET_PEERS_CONFIG=str(config)),
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


FAKE_WG = r"""
import base64, hashlib, json, os, sys

STATE = os.environ["FAKE_NODE_STATE"]


def load():
    with open(STATE) as handle:
        return json.load(handle)


def save(state):
    with open(STATE, "w") as handle:
        json.dump(state, handle)


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(1)


argv = sys.argv[1:]
if argv == ["pubkey"]:  # no state: never waits on another `wg` while its input is pending
    digest = hashlib.sha256(sys.stdin.read().strip().encode()).digest()
    print(base64.b64encode(digest).decode())
    sys.exit(0)
# The script runs several `wg` at once: one at a time on the state file.
import fcntl
lock = open(STATE + ".lock", "w")
fcntl.flock(lock, fcntl.LOCK_EX)
state = load()
state["calls"].append(argv[:3])
if state.get("traffic"):
    # A busy node: time passes on every call, and every peer that still has an address on an
    # interface carries traffic meanwhile.
    for busy in state["ifaces"].values():
        for peer in busy["peers"].values():
            if peer["allowed"]:
                peer["rx"] += 1000
                peer["tx"] += 100
save(state)
iface = state["ifaces"].get(argv[1]) if len(argv) > 1 else None
if iface is None:
    fail("Unable to access interface: No such device")
peers = iface["peers"]
if argv[0] == "show" and len(argv) == 3:
    for key, peer in peers.items():
        if argv[2] == "allowed-ips":
            print(f"{key}\t{' '.join(peer['allowed']) or '(none)'}")
        elif argv[2] == "preshared-keys":
            print(f"{key}\t{peer['psk'] or '(none)'}")
        elif argv[2] == "transfer":
            print(f"{key}\t{peer['rx']}\t{peer['tx']}")
        else:
            fail("unknown show")
    sys.exit(0)
if argv[0] != "set":
    fail("unknown command")
groups = []
for word in argv[2:]:
    if word == "peer":
        groups.append([])
    groups[-1].append(word)
state["set_calls"] += 1
failing = state["fail_set_call"] == state["set_calls"]
for group in groups[: len(groups) // 2] if failing else groups:
    key, options = group[1], group[2:]
    if options == ["remove"]:
        gone = peers.pop(key, None)
        if gone is not None:  # the counters it had when it went
            state.setdefault("finals", {})[f"{argv[1]} {key}"] = [gone["rx"], gone["tx"]]
        continue
    peer = peers.setdefault(key, {"allowed": [], "psk": None, "rx": 0, "tx": 0})
    while options:
        name, value, options = options[0], options[1], options[2:]
        if name == "preshared-key":
            with open(value) as handle:
                peer["psk"] = handle.read().strip() or None
        elif name == "allowed-ips":
            nets = [n for n in value.split(",") if n]
            for other in peers.values():
                other["allowed"] = [n for n in other["allowed"] if n not in nets]
            peer["allowed"] = nets
save(state)
if failing:
    fail("Unable to modify interface: Argument list too long")
"""

FAKE_IP = r"""
import json, os, sys

STATE = os.environ["FAKE_NODE_STATE"]
import fcntl
lock = open(STATE + ".lock", "w")
fcntl.flock(lock, fcntl.LOCK_EX)
with open(STATE) as handle:
    state = json.load(handle)
argv = sys.argv[1:]
state["ip_calls"].append(argv)
family, verb, dev = argv[0], argv[2], argv[-1]
routes = state["ifaces"][dev].setdefault("routes", [])
if verb == "show":
    print("\n".join(r for r in routes if (":" in r) == (family == "-6")))
elif verb == "replace":
    net = argv[3]
    bare = net.removesuffix("/32") if family == "-4" else net.removesuffix("/128")
    if bare not in routes:
        routes.append(bare)
with open(STATE, "w") as handle:
    json.dump(state, handle)
"""

RUNNER = """
import importlib.machinery, importlib.util, os, sys
spec = importlib.util.spec_from_loader(
    "wgfleet_peers", importlib.machinery.SourceFileLoader("wgfleet_peers", sys.argv[1]))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.SYS_NET = os.environ["FAKE_NODE_SYS_NET"]
module.RUN_DIR = os.environ["FAKE_NODE_RUN"]
sys.exit(module.main(sys.argv[1:]))
"""


class FakeNode:
    """A node whose interfaces are a JSON file: ``up`` makes one, ``run`` runs the script."""

    def __init__(self, base: Path, **config: Any) -> None:
        self.base = base
        self.wg_dir = base / "wireguard"
        self.wg_dir.mkdir(parents=True, exist_ok=True)
        (base / "run").mkdir(exist_ok=True)
        self.sys_net = base / "sys-class-net"
        self.sys_net.mkdir(exist_ok=True)
        self.bin = base / "bin"
        self.bin.mkdir(exist_ok=True)
        for name, source in (("wg", FAKE_WG), ("ip", FAKE_IP)):
            path = self.bin / name
            path.write_text(f"#!{sys.executable}\n{source}")
            path.chmod(0o755)
        self.state_file = base / "state.json"
        self.save(
            {"ifaces": {}, "fail_set_call": None, "set_calls": 0, "calls": [], "ip_calls": []}
        )
        self.config = write_config(base / "peers.json", peers_config(base, **config))

    def state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.state_file.read_text())
        return loaded

    def save(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def up(self, iface: str, peers: dict[str, dict[str, Any]] | None = None) -> None:
        state = self.state()
        state["ifaces"][iface] = {"peers": peers or {}, "routes": []}
        self.save(state)
        (self.sys_net / iface).mkdir(exist_ok=True)

    def peers(self, iface: str = INTERFACE) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self.state()["ifaces"][iface]["peers"]
        return found

    def busy(self) -> None:
        """From now on every peer with an address carries traffic between any two calls."""
        state = self.state()
        state["traffic"] = True
        self.save(state)

    def finals(self) -> dict[str, tuple[int, int]]:
        """'IFACE KEY' -> the counters a removed peer had when it went."""
        return {name: (rx, tx) for name, (rx, tx) in self.state().get("finals", {}).items()}

    def fail_set_call(self, number: int | None) -> None:
        state = self.state()
        state["fail_set_call"], state["set_calls"] = number, 0
        self.save(state)

    def files(self) -> dict[str, str]:
        """Every file of the node's wireguard directory, by name."""
        return {p.name: p.read_text() for p in sorted(self.wg_dir.iterdir())}

    def run(self, request: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = clean_environment(
            WGFLEET_PEERS_CONFIG=str(self.config),
            FAKE_NODE_STATE=str(self.state_file),
            FAKE_NODE_SYS_NET=str(self.sys_net),
            FAKE_NODE_RUN=str(self.base / "run"),
            PATH=f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        )
        return subprocess.run(
            [sys.executable, "-c", RUNNER, str(SCRIPT), *args],
            input=request,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
