"""Benchmark: disable 1,000 configurations on one real node with 10,000 peers, against one
`wg syncconf` of the same final state.

A real lab (as tests/conftest.py makes it: `lab_up` with 1 node and 1 client, here the lab
tests/worker_space.py derives for it, state under a temporary directory, `lab_down` afterwards whatever happens), the
node deployed with the `deploy` the tests use. The store gets 10,000 configurations on that
node, each with a preshared key as `peers add` makes them: 9,996 by bulk SQL (real X25519
public keys, tunnel addresses from 198.19.128.0/18, since a lab node's own /24 pool is too
small; the deploy adds that network to the node's `peers_tunnel_networks_ipv4`, or its push
would refuse them) and 4 made with `add_configuration` that the lab client really uses, one after the other
(pings through each), so their counters on the node are not zero; the last one keeps its tunnel
up. One of the four is among the disabled: its last counters must come back in the push answer.

| case | reference (same run) | target |
| --- | --- | --- |
| disable 1,000 of 10,000 peers: what `wgfleet peers disable` runs (fleet lock, open the store, `peers.set_enabled`: store write, push to the node over a fresh SSH connection, accounting of the removed peers' last counters); the node is in sync, so the push is a delta (checked) | one fresh SSH connection (root, paramiko, pinned keys, the push's key exchange offer) running `wg syncconf wg0 /dev/stdin` with the final state on stdin (9,000 peers with their preshared keys, the interface's own key and port) | <= 1.5x; other peers' counters untouched |
| the same store write, then a push of the node's full set (what a node that is behind gets) | the same | for comparison |

The reference is the SSH exec alone: its config text is rendered beforehand, untimed, so it is a
floor (a controller using syncconf would also read the store and the keys). Each case runs
`--repeat` times (the 1,000 restored in between, untimed); the median run is reported. After
every run the bench checks on the node: the 1,000 are gone from `wg show wg0 peers` and the
9,000 others are all there; no counter went below what it was before (a peer removed and added
back restarts at zero); the client's peer still counts and carries pings; the interface's public
key did not change. After the first delta, the used peer's last counters came back and the
store counted exactly those bytes for it. The disables are also broken down: controller side by
wrapping the fleet's store write, secret store and SSH run and the push module's steps for the
measured call; node side from `elapsed_ms` in the push answer and a few probes timed on the node.

Run as root after `bash .ci/install` (about 2 minutes, 1 of them the Ansible deploy):
    .venv/bin/python -m tests.bench.bench_node_push [--peers 10000] [--disable 1000]
        [--repeat 3] [--json]

Measured on this machine (2 cores shared with other labs: load average 16 falling to 6 during
the first run, 6 to 2.6 during the second; median of 3; every invariant held):

| case | wall s | controller CPU s | ratio | target |
| --- | --- | --- | --- | --- |
| disable 1,000 of 10,000 peers (set_enabled + push, a delta) | 0.35 | 0.07 | 1.09 | <= 1.5: met |
| the same, full set | 0.88 | 0.45 | 2.70 | |
| reference: one `wg syncconf` of 9,000 peers over SSH | 0.32 | 0.01 | 1.00 | |

Runs: delta 0.370, 0.340, 0.353 s; full set 0.878, 1.095, 0.764 s; reference 0.325, 0.300,
0.354 s. Second run: delta 0.405, 0.360, 0.396; full 0.788, 0.939, 0.857; reference 0.307,
0.354, 0.365 (ratio 1.12, full 2.42). Before deltas the disable took 1.04 s (4.0x).
Where the delta's 0.35 s go: fleet lock and store open 0.001; store `set_enabled` with the
revisions read around it 0.028; `peer_delta` 0.004; no configuration read, no preshared key
(a disable holds none); SSH connect + exec of wgfleet-peers 0.277, of which 0.095 on the node
(one device read, `wg show transfer`, run while the persisted set is read and its revision and
key set checked; `wg set` removing 1,000; the .peers file rewritten) and the rest connection
(~0.07), session (~0.05: TCP_NODELAY is not set on the controller's SSH socket, so each exec
pays a delayed-ACK stall; setting it measured 0.066 -> 0.025 s a connect and ~50 -> ~10 ms an
exec, for the reference too), sudo and python3 (~0.04); accounting of the 1,000 removed 0.015;
the rest (revisions, leases, mark pushed) 0.026. The full set: reading the 10,000
configurations 0.149, `desired_peers` 0.033, 9,000 preshared-key files 0.151, rendering 0.036,
SSH 0.432 of which 0.227 on the node (now: two device reads in parallel, `allowed-ips` and
`preshared-keys`; `transfer` only when a peer leaves or a handover is pending; networks checked
by one regex, ipaddress only for networks other than a /32). The reference: connect 0.067,
`wg syncconf` on the node about 0.2.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any

from orchestrator.adapters import ssh, wgkeys
from orchestrator.adapters.lab.clients import ping_from
from orchestrator.core.lab_layout import LabNode, plan_layout
from orchestrator.core.models import DisabledReason
from orchestrator.core.peers import desired_peers
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import push as push_service
from orchestrator.service.context import Fleet, open_fleet
from orchestrator.settings import Settings
from tests.bench.bench_fleet import print_table as print_results
from tests.bench.report import run_main
from tests.conftest import deploy_fleet, lab_settings
from tests.worker_space import derived_lab

LAB_NAME, LAB_SUBNET = derived_lab("bench-push")  # tests/worker_space.py
BULK_POOL = ipaddress.IPv4Network("198.19.128.0/18")  # clear of lab nodes' 198.19.N.0/24 pools
NODE = "node1"
CLIENT = "client1"
ACCOUNT = "bench"
USED_KEPT = 2  # real configurations used by the client earlier, then left on the node
LOAD_BATCH = 5000  # peers added per set-up push (see load_peers)
TARGET = 1.5


def log(message: str) -> None:
    print(f"[bench_node_push] {message}", file=sys.stderr, flush=True)


# --- the lab --------------------------------------------------------------------------------


@dataclass
class Bench:
    settings: Settings
    node: LabNode
    client_netns: str
    peers: int
    disable: int
    live: str = ""  # the configuration whose tunnel the client keeps up
    kept_used: list[str] = field(default_factory=list)
    gone_used: str = ""  # used earlier, among the disabled
    disabled: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # configuration -> public key
    # Secret (the interface's private key, preshared keys): in memory only, never in a repr.
    interface: list[str] = field(default_factory=list, repr=False)  # the [Interface] lines
    static_peers: list[str] = field(default_factory=list, repr=False)  # the deploy's own, if any

    def root(self, argv: list[str] | str, stdin: str | None = None) -> str:
        """As root on the node over the lab's pinned SSH (what tests/integration does)."""
        with ssh.NodeConnection(lab_service.node_target(self.settings, self.node)) as connection:
            return connection.run(argv, stdin=stdin).stdout

    def transfer(self) -> dict[str, tuple[int, int]]:
        rows = self.root(["wg", "show", "wg0", "transfer"]).splitlines()
        return {k: (int(rx), int(tx)) for k, rx, tx in (r.split("\t") for r in rows)}

    def live_peers(self) -> set[str]:
        return set(self.root(["wg", "show", "wg0", "peers"]).split())

    def public_key(self) -> str:
        return self.root(["wg", "show", "wg0", "public-key"]).strip()

    def ping(self, count: int = 5) -> bool:
        address = str(self.node.tunnel_address)
        deadline = time.monotonic() + 30  # the first handshake may take a few seconds
        while ping_from(self.client_netns, address, count=1, wait=1).returncode != 0:
            if time.monotonic() > deadline:
                return False
        return ping_from(self.client_netns, address, count=count, interval=0.1).returncode == 0


@contextmanager
def real_lab(peers: int, disable: int) -> Iterator[Bench]:
    """A 1-node, 1-client lab, deployed; torn down afterwards whatever happens."""
    if os.geteuid() != 0:
        raise SystemExit("bench_node_push needs root (it builds a lab)")
    with tempfile.TemporaryDirectory(prefix="wgfleet-bench-push-") as tmp:
        settings = lab_settings(Path(tmp), LAB_NAME, LAB_SUBNET)
        layout = plan_layout(LAB_NAME, settings.lab.subnet, 1, 1)
        try:
            started = time.perf_counter()
            lab_service.lab_up(settings, 1, 1)
            log(f"lab up in {time.perf_counter() - started:.0f} s; deploying {NODE}")
            started = time.perf_counter()
            # The node's push takes addresses of the bulk pool as well as of its own /24 (a
            # real node of this size would have a larger tunnel network).
            node = layout.node(NODE)
            pools = {"peers_tunnel_networks_ipv4": [str(node.tunnel_network), str(BULK_POOL)]}
            deployed = deploy_fleet(settings, extravars=pools)
            assert deployed.ok, deployed.as_dict()
            log(f"deployed in {time.perf_counter() - started:.0f} s")
            yield Bench(settings, layout.node(NODE), layout.client(CLIENT).netns, peers, disable)
        finally:
            lab_service.lab_down(settings)


# --- set-up (not measured) ------------------------------------------------------------------


def add_bulk(fleet: Fleet, names: list[str]) -> dict[str, str]:
    """Configurations on the node by bulk SQL, each with a preshared key in the secret store,
    as `add_configuration` would leave them (whose per-row checks cost minutes at 10,000)."""
    store = fleet.store
    keys = {name: wgkeys.new_keypair().public_key for name in names}
    hosts = BULK_POOL.hosts()
    today = date.today()
    sealing = fleet.secrets.keyring().current
    with store.transaction():
        store.db.executemany(
            "INSERT INTO sealed_secrets (ref, key_id, sealed) VALUES (?, ?, ?)",
            [
                (f"psk:{n}", sealing.key_id, sealing.seal(f"psk:{n}", wgkeys.new_preshared_key()))
                for n in names
            ],
        )
        account = store.db.execute("SELECT id FROM accounts WHERE username = ?", (ACCOUNT,))[0][0]
        store.db.executemany(
            "INSERT INTO configurations (name, account_id, public_key, psk_ref, key_created_on, "
            "psk_created_on) VALUES (?, ?, ?, ?, ?, ?)",
            [(n, account, keys[n], f"psk:{n}", today, today) for n in names],
        )
        ids = dict(store.db.execute("SELECT name, id FROM configurations"))
        store.db.executemany(
            "INSERT INTO configuration_nodes (configuration_id, node, tunnel_address) "
            "VALUES (?, ?, ?)",
            [(ids[n], NODE, str(next(hosts))) for n in names],
        )
        store.bump_nodes([NODE])
    return keys


def prepare(bench: Bench) -> None:
    """10,000 peers on the node, 4 of them used by the client, the full state pushed."""
    settings = bench.settings
    real = [f"used-kept-{i}" for i in range(1, USED_KEPT + 1)] + ["used-gone", "client"]
    bulk_count = bench.peers - len(real)
    with open_fleet(settings, write=True) as fleet:
        peers_service.add_account(fleet, ACCOUNT, "a bench password", "bench-device")
        # Real ones first, through the service, used by the client one after the other.
        for name in real:
            made = peers_service.add_configuration(fleet, ACCOUNT, nodes=[NODE], name=name)
            assert made.push.ok, made.push.as_dict()
            bench.keys[name] = made.configuration.public_key
            lab_service.tunnel_up(settings, CLIENT, made.client_configs[NODE])
            assert bench.ping(), f"no ping through {name}'s tunnel"
        bench.live, bench.kept_used, bench.gone_used = real[-1], real[:USED_KEPT], real[USED_KEPT]
        started = time.perf_counter()
        bulk = [f"bulk-{i:05d}" for i in range(bulk_count)]
        bench.keys.update(add_bulk(fleet, bulk))
        log(f"{bulk_count} bulk configurations stored in {time.perf_counter() - started:.1f} s")
        load_peers(bench, fleet, bulk)
    # Evenly through the bulk (their keys, hence their places on the node, are random).
    picked = bench.disable - 1
    bench.disabled = sorted({bulk[i * bulk_count // picked] for i in range(picked)})
    bench.disabled.append(bench.gone_used)
    assert len(set(bench.disabled)) == bench.disable
    assert bench.ping(), "the client's tunnel does not carry pings at 10,000 peers"
    # The interface's own settings for the reference's syncconf: read once, kept in memory.
    read_interface(bench)


def read_interface(bench: Bench) -> None:
    """The interface's own lines (private key, port) and any peer the deploy wrote itself, for
    the reference's syncconf, which would otherwise clear them. Kept in memory, never shown."""
    managed = set(bench.keys.values())
    sections: list[list[str]] = []
    for line in bench.root(["wg", "showconf", "wg0"]).splitlines():
        if line.startswith("["):
            sections.append([line])
        elif line.strip() and sections:
            sections[-1].append(line)
    for section in sections:
        if section[0] == "[Interface]":
            bench.interface = section
            continue
        key = next((s.split("=", 1)[1].strip() for s in section if s.startswith("PublicKey")), "")
        if key not in managed:  # endpoints stay on the node: syncconf keeps them as they are
            bench.static_peers += ["", *(s for s in section if not s.startswith("Endpoint"))]
    assert any(s.startswith("PrivateKey") for s in bench.interface), "no [Interface] key read"


def load_peers(bench: Bench, fleet: Fleet, bulk: list[str]) -> None:
    """Push the full state, in pushes of the whole desired set that add LOAD_BATCH peers each:
    wgfleet-peers adds all new peers with one `wg set` whose arguments (about 170 bytes a peer)
    pass Linux's 2 MB limit above about 12,000 peers, so a larger --peers needs batches."""
    started = time.perf_counter()
    store = fleet.store
    with store.transaction():
        store.db.execute(
            "UPDATE configurations SET enabled = ?, disabled_reason = ? WHERE name LIKE 'bulk-%'",
            (False, DisabledReason.OPERATOR.value),
        )
    for start in range(0, len(bulk), LOAD_BATCH):
        batch = bulk[start : start + LOAD_BATCH]
        with store.transaction():
            store.db.executemany(
                "UPDATE configurations SET enabled = ?, disabled_reason = NULL WHERE name = ?",
                [(True, n) for n in batch],
            )
            store.bump_nodes([NODE])
        loaded = push_service.push(fleet, [NODE])
        assert loaded.ok, loaded.as_dict()
    answer = loaded.nodes[0].answer
    assert answer is not None and answer.changes == len(bulk) - start
    assert len(bench.transfer()) == bench.peers
    log(f"{bench.peers} peers pushed to {NODE} in {time.perf_counter() - started:.1f} s")


# --- checks ---------------------------------------------------------------------------------


def check_counters(
    bench: Bench, before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, Any]:
    """The disabled are gone, the others all there with counters not below what they were."""
    gone = {bench.keys[n] for n in bench.disabled}
    live = bench.live_peers()
    assert not gone & live, f"{len(gone & live)} disabled peers still on the node"
    remaining = set(before) - gone
    assert set(after) == remaining == live, (
        f"peers: {len(after)} on the node, {len(remaining)} expected"
    )
    went_back = [k for k in remaining if after[k][0] < before[k][0] or after[k][1] < before[k][1]]
    assert not went_back, f"{len(went_back)} peers' counters went back (removed and re-added?)"
    client = bench.keys[bench.live]
    assert all(after[client]) and after[client] >= before[client], "client counters reset"
    # (a peer the client left may still send one keepalive: its counters may grow, not drop)
    assert all(all(after[bench.keys[n]]) for n in bench.kept_used), "a used peer lost traffic"
    return {
        "remaining_peers": len(remaining),
        "nonzero_untouched": sum(1 for k in remaining if any(after[k])),
        "counters_went_back": 0,
        "disabled_still_live": 0,
        "client_before": list(before[client]),
        "client_after": list(after[client]),
    }


# --- the measured cases ---------------------------------------------------------------------


class Phases:
    """Cumulative wall time of wrapped calls, for the breakdown of one measured call."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
                self.calls[label] = self.calls.get(label, 0) + 1

        return timed


@contextmanager
def instrumented(fleet: Fleet, phases: Phases) -> Iterator[None]:
    """Time the parts of one push: the fleet's store write, secret store and SSH run, and the
    push module's planning steps (restored afterwards). The wrappers cost microseconds a call."""
    store, secrets = fleet.store, fleet.secrets
    store.set_enabled = phases.wrap("store_set_enabled", store.set_enabled)  # type: ignore[method-assign]
    secrets.get_many = phases.wrap("secrets_get", secrets.get_many)  # type: ignore[method-assign]
    fleet.run = phases.wrap("ssh_exec", fleet.run)  # type: ignore[method-assign]
    module: dict[str, Any] = vars(push_service)
    steps = (
        "_placed",  # the full path's read of the node's configurations
        "desired_peers",
        "peer_delta",
        "render_request",
        "render_delta_request",
        "_account_removals",
    )
    saved = {n: module[n] for n in steps}
    try:
        for name, function in saved.items():
            module[name] = phases.wrap(name, function)
        yield
    finally:
        module.update(saved)


def case_disable(bench: Bench, full: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `wgfleet peers disable NAMES` runs, timed as one call: fleet lock, open the store,
    `peers.set_enabled` (store write, then the push to the node, a delta since the node is in
    sync, and its accounting). ``full``: the same store write, then a push of the node's whole
    set (what every disable sent before deltas, and what a node that is behind still gets)."""
    phases = Phases()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with open_fleet(bench.settings, write=True) as fleet:
        opened = time.perf_counter()
        with instrumented(fleet, phases):
            if full:
                changed = fleet.store.set_enabled(bench.disabled, False, DisabledReason.OPERATOR)
                pushed = push_service.push(fleet, {n for c in changed for n in c.nodes})
            else:
                changed, pushed = peers_service.set_enabled(
                    fleet, bench.disabled, False, DisabledReason.OPERATOR
                )
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert pushed.ok, pushed.as_dict()
    assert len(changed) == bench.disable and len(pushed.nodes) == 1
    answer = pushed.nodes[0].answer
    assert answer is not None
    assert len(answer.removed) == bench.disable and not answer.added and not answer.changed
    assert answer.unchanged == bench.peers - bench.disable
    assert answer.delta != full, f"the disable went {'as a delta' if full else 'in full'}"
    breakdown: dict[str, Any] = {"open_store_and_lock": opened - wall0, **phases.seconds}
    breakdown["rest"] = wall - sum(breakdown.values())
    breakdown["node_elapsed"] = answer.elapsed_ms / 1000
    breakdown["secrets_read"] = phases.calls.get("secrets_get", 0)
    removed = {r.public_key: (r.rx_bytes, r.tx_bytes) for r in answer.removed}
    return {"wall_s": wall, "cpu_s": cpu, "removed": removed}, breakdown


def used_bytes(bench: Bench, name: str) -> int:
    with open_fleet(bench.settings) as fleet:
        return sum(u.total for u in fleet.store.usage(name))


def final_config(bench: Bench) -> str:
    """The final state as a wg(8) config: the interface's own lines, the enabled peers with
    their preshared keys, and any static peer of the deploy. Private: kept in memory only."""
    with open_fleet(bench.settings) as fleet:
        configurations = fleet.store.configurations(on_nodes=[NODE])
        disabled = set(bench.disabled)
        peers = desired_peers(
            NODE, [c for c in configurations if c.name not in disabled], int(time.time())
        )
        lines = list(bench.interface)
        for peer in peers:
            lines += ["", "[Peer]", f"PublicKey = {peer.public_key}"]
            if peer.psk_ref:
                lines.append(f"PresharedKey = {fleet.secrets.get(peer.psk_ref)}")
            lines.append(f"AllowedIPs = {peer.allowed_ip}")
    lines += bench.static_peers
    assert len(peers) == bench.peers - bench.disable
    return "\n".join(lines) + "\n"


def case_syncconf(bench: Bench, config_text: str) -> dict[str, Any]:
    """One fresh connection, the way the push connects (paramiko, pinned keys, the same key
    exchange offer), one exec of `wg syncconf` with the final state on stdin."""
    target = lab_service.node_target(bench.settings, bench.node)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ssh.NodeConnection(target) as connection:
        connected = time.perf_counter()
        connection.run(["wg", "syncconf", "wg0", "/dev/stdin"], stdin=config_text, timeout=120)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "connect_s": connected - wall0}


def restore(bench: Bench, fleet_state_changed: bool) -> None:
    """The 1,000 back on the node (not measured): enable and push them, or only push when the
    store still holds them enabled (after the reference, which changed the node alone)."""
    with open_fleet(bench.settings, write=True) as fleet:
        if fleet_state_changed:
            changed, pushed = peers_service.set_enabled(fleet, bench.disabled, True)
            assert len(changed) == bench.disable
        else:
            pushed = push_service.push(fleet, [NODE])
    assert pushed.ok and pushed.nodes[0].answer is not None, pushed.as_dict()
    assert len(pushed.nodes[0].answer.added) == bench.disable
    assert len(bench.transfer()) == bench.peers


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]


# --- the run --------------------------------------------------------------------------------


def bench(peers: int, disable: int, repeat: int) -> dict[str, Any]:
    """Each case ``repeat`` times (the 1,000 restored in between, not measured); the median
    run is reported, and every run's invariants are checked."""
    disables: list[dict[str, Any]] = []
    fulls: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    probes: dict[str, float] = {}
    real = USED_KEPT + 2
    if not real < peers <= real + BULK_POOL.num_addresses - 2:
        raise SystemExit(f"--peers {peers}: between {real + 1} and {real + 16_000}")
    if not 1 < disable <= peers - real + 1:
        raise SystemExit(f"--disable {disable}: between 2 and {peers - real + 1}")
    if repeat < 1:
        raise SystemExit("--repeat: at least 1")
    with real_lab(peers, disable) as lab:
        prepare(lab)
        node_key = lab.public_key()
        gone = lab.keys[lab.gone_used]
        for run in range(repeat):
            for full in (False, True):
                before = lab.transfer()
                kind = "full set" if full else "delta"
                log(f"measuring {run + 1}/{repeat}: disable {disable} of {len(before)}, {kind}")
                measured, breakdown = case_disable(lab, full)
                invariants = check_counters(lab, before, lab.transfer())
                # Each removed peer's last counters come back in the answer, for the
                # accounting; the used one's are not zero the first time (it is re-added at
                # zero after), and all its bytes are counted then (no sync ran before).
                removed = measured.pop("removed")
                assert set(removed) == {lab.keys[n] for n in lab.disabled}
                assert all(removed[k] >= before[k] for k in removed), "a removed peer's counters"
                if run == 0 and not full:
                    assert all(removed[gone]), "the used peer's counters did not come back"
                    counted = used_bytes(lab, lab.gone_used)
                    assert counted == sum(removed[gone]), f"{counted} bytes counted"
                    config_text = final_config(lab)  # the same final state, rendered once
                assert lab.ping(), "the client's tunnel stopped carrying pings after the disable"
                assert lab.public_key() == node_key, "the push changed the interface's key"
                runs = fulls if full else disables
                runs.append({**measured, "breakdown": breakdown, "invariants": invariants})
                restore(lab, fleet_state_changed=True)
        for run in range(repeat):
            before = lab.transfer()
            log(f"measuring the reference {run + 1}/{repeat}: one `wg syncconf`")
            measured = case_syncconf(lab, config_text)
            invariants = check_counters(lab, before, lab.transfer())
            assert lab.ping(), "the client's tunnel stopped carrying pings after the syncconf"
            assert lab.public_key() == node_key, "syncconf changed the interface's key"
            references.append({**measured, "invariants": invariants})
            if run == 0:
                probes = node_probes(lab)  # at the final state
            restore(lab, fleet_state_changed=False)
        del config_text

    disabled, reference = median_run(disables), median_run(references)
    in_full = median_run(fulls)
    ratio = disabled["wall_s"] / reference["wall_s"]
    return {
        "nodes": 1,
        "peers": peers,
        "disable": disable,
        "repeat": repeat,
        "cores": os.cpu_count(),
        "results": [
            {
                "case": f"disable {disable} of {peers} peers: set_enabled + push",
                "wall_s": disabled["wall_s"],
                "cpu_s": disabled["cpu_s"],
                "ratio": ratio,
                "target": f"<= {TARGET}",
                "met": ratio <= TARGET,
                "runs_wall_s": [r["wall_s"] for r in disables],
            },
            {
                "case": "the same, node sent its full set (no delta)",
                "wall_s": in_full["wall_s"],
                "cpu_s": in_full["cpu_s"],
                "ratio": in_full["wall_s"] / reference["wall_s"],
                "target": "for comparison",
                "runs_wall_s": [r["wall_s"] for r in fulls],
            },
            {
                "case": f"reference: `wg syncconf` of {peers - disable} peers, SSH",
                "wall_s": reference["wall_s"],
                "cpu_s": reference["cpu_s"],
                "ratio": 1.0,
                "target": "reference",
                "runs_wall_s": [r["wall_s"] for r in references],
            },
        ],
        "breakdown": disabled["breakdown"],
        "breakdown_full": in_full["breakdown"],
        "reference_connect_s": reference["connect_s"],
        "node_probes": probes,
        "invariants": {
            "disable": disabled["invariants"],
            "disable, full set": in_full["invariants"],
            "reference": reference["invariants"],
        },
    }


def node_probes(bench: Bench) -> dict[str, float]:
    """What the node's side of a push is made of, timed on the node at the final state (as
    root, one exec): the reads `wgfleet-peers` does at every push, and python3 starting."""
    script = (
        "import subprocess, time, json\n"
        "out = {}\n"
        "for name, argv in ("
        "('python3_start', ['python3', '-c', 'pass']), "
        "('wg_show_allowed_ips', ['wg', 'show', 'wg0', 'allowed-ips']), "
        "('wg_show_preshared_keys', ['wg', 'show', 'wg0', 'preshared-keys']), "
        "('wg_show_transfer', ['wg', 'show', 'wg0', 'transfer'])):\n"
        "    t = time.monotonic()\n"
        "    subprocess.run(argv, capture_output=True, check=True)\n"
        "    out[name] = time.monotonic() - t\n"
        "print(json.dumps(out))\n"
    )
    return dict(json.loads(bench.root(["python3", "-c", script])))


def print_table(report: dict[str, Any]) -> None:
    print_results(report)  # the same table as the other benchmarks'
    runs = [" ".join(f"{w:.3f}" for w in r["runs_wall_s"]) for r in report["results"]]
    print(f"median of {report['repeat']} runs; every run, wall s: delta {runs[0]}; "
          f"full set {runs[1]}; reference {runs[2]}")  # fmt: skip
    print("\nwhere the disable's wall time goes (s, the median run):      delta  full set")
    d, f = report["breakdown"], report["breakdown_full"]

    def both(key: str) -> tuple[float, float]:
        return d.get(key, 0.0), f.get(key, 0.0)

    full_render, delta_render = both("render_request"), both("render_delta_request")
    renders = (full_render[0] + delta_render[0], full_render[1] + delta_render[1])
    rows = [
        ("fleet lock + open the store", both("open_store_and_lock")),
        ("store: set_enabled (1 transaction)", both("store_set_enabled")),
        ("delta of the change (peer_delta)", both("peer_delta")),
        ("read the node's configurations", both("_placed")),
        ("desired peer set (desired_peers)", both("desired_peers")),
        (
            f"preshared keys opened ({d['secrets_read']}, {f['secrets_read']} reads)",
            both("secrets_get"),
        ),
        ("render the request", renders),
        ("SSH: connect + exec wgfleet-peers + answer", both("ssh_exec")),
        ("  of which the node's own time (elapsed_ms)", both("node_elapsed")),
        ("accounting of the removed peers' last counters", both("_account_removals")),
        ("rest (revisions, leases, parse, mark pushed, threads)", both("rest")),
    ]
    for label, (delta, full) in rows:
        print(f"  {label:<56}{delta:>8.3f}{full:>10.3f}")
    print(f"  reference: SSH connect alone {report['reference_connect_s']:.3f}")
    print("node probes at the final state (s): " + ", ".join(
        f"{k} {v:.3f}" for k, v in report["node_probes"].items()
    ))  # fmt: skip
    for case, inv in report["invariants"].items():
        print(
            f"invariants after {case}: {inv['remaining_peers']} peers remain, "
            f"{inv['nonzero_untouched']} with traffic untouched, none went back, disabled gone; "
            f"client {inv['client_before']} -> {inv['client_after']}"
        )


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--peers", type=int, default=10000)
    parser.add_argument("--disable", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (median)")


def main() -> int:
    return run_main(
        __doc__,
        arguments,
        lambda args: bench(args.peers, args.disable, args.repeat),
        print_table,
    )


if __name__ == "__main__":
    sys.exit(main())
