"""Four shards and a whole-fleet run at once against one real PostgreSQL store.

The nodes are synthetic (one real sshd answering for 40 addresses, tests/synthetic_nodes.py);
everything on the controller side is the real `wgfleet sync` in separate processes, as cron or
several controllers would run it. Each configuration sits on two nodes in different shards,
so the shards write the same usage rows at once; counters grow while the runs are under way.
Then failover: two controllers running `sync --every`, one killed with SIGKILL mid-run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.adapters import ssh
from orchestrator.adapters.store import open_store
from orchestrator.core.shard import Shard
from tests.pgserver import fresh_database
from tests.synthetic_fleet import counters, expected_total, populate, settings_for
from tests.synthetic_nodes import SyntheticNodes, cached_rootfs

pytestmark = pytest.mark.lab

NODES = 40
PEERS = 25


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyntheticNodes]:
    with SyntheticNodes(tmp_path_factory.mktemp("synthetic"), cached_rootfs(), NODES) as nodes:
        yield nodes


def _start(settings_file: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "--config",
            str(settings_file),
            "--json",
            "sync",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_shards_and_a_whole_fleet_run_at_once_count_every_byte_once(
    synthetic: SyntheticNodes, postgres_server: str, tmp_path: Path
) -> None:
    url = fresh_database(postgres_server)
    store = open_store(url)
    hosted = populate(store, synthetic.addresses, PEERS, spread=2)
    store.db.execute("UPDATE nodes SET revision = 1")  # every node pending: pushes run too
    store.close()
    names = sorted(hosted)
    controller = {
        label: settings_for(tmp_path / label, synthetic, url)[1] for label in ("a", "b", "c")
    }
    runs = [("a", "1/4"), ("a", "2/4"), ("b", "3/4"), ("b", "4/4"), ("c", None)]
    scale = dict.fromkeys(names, 0)

    def bump(nodes: list[str], by: int) -> None:
        for name in nodes:
            scale[name] += by
            address = synthetic.addresses[int(name[1:])]
            synthetic.write_counters(address, counters("e1", hosted[name], scale[name]))

    for round_number in range(1, 4):
        bump(names, 1000 * round_number)
        started = []
        for label, shard in runs:
            if shard is None:
                time.sleep(0.5)  # the shards lease first; the whole-fleet run takes what is left
            # The whole-fleet run queues behind the shards' fleet lock, which on PostgreSQL
            # is an advisory lock every controller shares (--wait: not exit 3).
            args = ["--shard", shard] if shard else ["--wait"]
            started.append((label, shard, _start(controller[label], *args)))
        time.sleep(0.3)
        bump(names[::3], 7)  # traffic keeps flowing while the runs are under way
        for label, shard, process in started:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, f"{label} {shard}: {err}"
            result = json.loads(out)
            assert result["nodes_failed"] == {}
            if shard is not None:
                index, count = (int(x) for x in shard.split("/"))
                covered = set(result["nodes_ok"]) | set(result["nodes_skipped"])
                assert covered == set(Shard(index, count).select(names)), shard

    # Counters stand still now: one more pass of the four shards must land on the exact totals.
    for label, shard in runs[:4]:
        process = _start(controller[label], "--shard", str(shard))
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    store = open_store(url)
    try:
        used = sum(u.rx_bytes + u.tx_bytes for u in store.usage())
        assert used == expected_total(hosted, scale)
        assert store.running_totals() == store.recomputed_totals()
        pending = [n for n, (want, done) in store.node_revisions().items() if want != done]
        assert pending == []
        assert store.db.execute("SELECT count(*) FROM node_leases")[0][0] == NODES
    finally:
        store.close()


@pytest.mark.parametrize("kept", [None, NODES // 4])
def test_sync_every_keeps_one_session_per_node_across_runs(
    synthetic: SyntheticNodes, tmp_path: Path, kept: int | None
) -> None:
    """Every node's session kept across runs; with `ssh.kept_sessions` below the fleet, the
    same nodes keep theirs and the others connect afresh every run."""
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(store_url)
    hosted = populate(store, synthetic.addresses, 5)
    store.close()
    for name, keys in hosted.items():
        synthetic.write_counters(synthetic.addresses[int(name[1:])], counters("e2", keys, 10))
    settings_file = settings_for(tmp_path / "controller", synthetic, store_url)[1]
    if kept is not None:
        raw = yaml.safe_load(settings_file.read_text(encoding="utf-8"))
        raw["ssh"]["kept_sessions"] = kept
        settings_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    ports = synthetic.record_client_ports()
    try:
        process = _start(settings_file, "--every", "1s", "--runs", "3")
        out, err = process.communicate(timeout=120)
        lines = [json.loads(line) for line in out.splitlines()]
        seen = ports.read_text(encoding="ascii").split()
    finally:
        ports.unlink()
    assert process.returncode == 0, err
    assert [line["run"] for line in lines] == [1, 2, 3]
    assert all(len(line["nodes_ok"]) == NODES for line in lines)
    assert [line["sessions_open"] for line in lines] == [kept or NODES] * 3
    assert lines[0]["bytes_added"] == expected_total(hosted, dict.fromkeys(hosted, 10))
    assert lines[1]["bytes_added"] == lines[2]["bytes_added"] == 0
    assert len(seen) == 3 * NODES  # three execs per node...
    by_node: dict[str, set[str]] = {}
    for connection in seen:  # client address:port>node address
        by_node.setdefault(connection.split(">")[1], set()).add(connection)
    connections = sorted(len(ports_used) for ports_used in by_node.values())
    # ...over one connection per kept node, and one per run for every other node.
    held = NODES if kept is None else kept
    assert connections == [1] * held + [3] * (NODES - held)


def test_a_kept_session_sleeps_while_idle_and_ends_at_once_when_closed(
    synthetic: SyntheticNodes,
) -> None:
    """A kept session's transport thread does not poll while idle, yet answers the next command
    at once, and closing the pool ends it there and then. Here it would poll once an hour: a
    close that only closed the socket would leave the thread in poll() on a descriptor number
    the next session may be given, and alive for the hour."""
    target = ssh.Target(
        "n0", synthetic.addresses[0], "wgcollect", synthetic.keys["wgcollect"],
        synthetic.known_hosts, kex="curve25519",
    )  # fmt: skip
    with ssh.ConnectionPool(idle_poll=3600) as pool:
        assert pool.run(target, "echo first").stdout == "first\n"
        connection, kept = pool.connection(target)
        transport = connection.transport
        assert kept and transport is not None
        assert transport.sock.gettimeout() == 3600
        time.sleep(0.5)  # the thread is back in its hour-long poll
        assert pool.run(target, "echo second").stdout == "second\n"
        assert connection.transport is transport  # the same session, woken by the answer
    assert not transport.is_alive()


FAILOVER_INTERVAL = 10  # seconds between two `sync --every` runs
FAILOVER_DELAY = 2  # seconds each node takes to answer, so a run is killed mid-fetch


def _fleet_lock_held(url: str) -> bool:
    store = open_store(url)
    try:
        rows = store.db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        return bool(rows[0][0])
    finally:
        store.close()


def test_a_controller_killed_mid_cycle_is_taken_over_within_one_interval(
    synthetic: SyntheticNodes, postgres_server: str, tmp_path: Path
) -> None:
    """Two controllers (data directories of their own) run `sync --every` on one PostgreSQL
    store; one is SIGKILLed in the middle of a run, holding the fleet lock (and its nodes'
    leases, once it fetches). The other syncs every node within one interval, and the totals
    stay exact (`usage check`)."""
    url = fresh_database(postgres_server)
    store = open_store(url)
    hosted = populate(store, synthetic.addresses, 5)
    store.close()
    scale = dict.fromkeys(hosted, 3)
    for name, keys in hosted.items():
        synthetic.write_counters(synthetic.addresses[int(name[1:])], counters("f1", keys, 3))
    first = settings_for(tmp_path / "a", synthetic, url)[1]
    second = settings_for(tmp_path / "b", synthetic, url)[1]
    every = ["--every", f"{FAILOVER_INTERVAL}s"]
    synthetic.delay_counters(FAILOVER_DELAY)
    doomed = _start(first, *every)
    survivor: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 60
        while not _fleet_lock_held(url):  # the first controller is in its first run
            assert doomed.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        survivor = _start(second, *every, "--runs", "2")
        time.sleep(FAILOVER_DELAY / 2)  # mid-fetch: its nodes answer after FAILOVER_DELAY
        assert doomed.poll() is None
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed_at = time.monotonic()
        assert survivor.stdout is not None
        taken_over = json.loads(survivor.stdout.readline())
        assert time.monotonic() - killed_at < FAILOVER_INTERVAL
        assert sorted(taken_over["nodes_ok"]) == sorted(hosted)
        assert taken_over["nodes_failed"] == {}
        # Traffic goes on; the survivor's next run counts it.
        synthetic.delay_counters(0)
        for name, keys in hosted.items():
            scale[name] = 8
            synthetic.write_counters(synthetic.addresses[int(name[1:])], counters("f1", keys, 8))
        out, err = survivor.communicate(timeout=FAILOVER_INTERVAL * 3)
        assert survivor.returncode == 0, err
        assert sorted(json.loads(out.splitlines()[-1])["nodes_ok"]) == sorted(hosted)
    finally:
        synthetic.delay_counters(0)
        for process in (doomed, survivor):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
    check = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--config", str(second), "usage", "check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    store = open_store(url)
    try:
        assert sum(u.rx_bytes + u.tx_bytes for u in store.usage()) == expected_total(hosted, scale)
    finally:
        store.close()
