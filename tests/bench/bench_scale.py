"""Benchmark: the sync at fleet scale on PostgreSQL, 10,000 nodes x 100 peers by default.

Nodes are synthetic (tests/synthetic_nodes.py in its IPv6 mode: one real OpenSSH server in a
namespace of ours answers for every node address); the store is a throwaway PostgreSQL server
(fsync on) filled by bulk SQL, which is not measured. Every case runs in a child process of its
own, so its wall time, CPU seconds (user + system, its children included), peak RSS
(VmHWM) and counters per second are its own. Every sync case is steady state: each node's
counters moved since the previous sync.

| case | what runs |
| bare fetch (reference) | concurrent paramiko connect, exec, read of every node, 32 threads |
| sync, fresh sessions | `wgfleet sync` (service.sync): a key exchange per node |
| sync, kept sessions | `sync --every` (service.sync_loop and its ConnectionPool, which keeps
  ssh.kept_sessions sessions, 500 by default; the other nodes connect afresh each cycle):
  cycle 1 opens the sessions, cycle 2 runs on them |
| two controllers | two processes with data directories of their own on one PostgreSQL, shards
  1/2 and 2/2 (node leases in the store), started together: wall from the first start to the
  last end, CPU summed; the store's totals must come out exact |

A settled machine: before every case, and before the kept case's second cycle, the run waits
until the CPUs were less than 10% busy (--settle-busy) over 3 s, at most --settle-cap seconds
(120), and each row records the 1-minute load average and that share at its start; a case
never starts on the previous one's leftover work (the store's checkpoint, sshd's exits). Not the
load average itself: it decays by a factor e a minute, so after a case that ran 32 threads it
stays above 1.0 for minutes of an idle machine, and the order of the cases would decide it.

Kept sessions cost sshd two processes each (privilege separation) and the controller a paramiko
Transport and its thread, which sleeps while idle (ssh.KEPT_SESSION_POLL_SECONDS; paramiko's own
0.1 s poll cost 0.22 cores per 1,000 idle sessions). A probe opens --probe
sessions first (500) and measures both sides per session, and the controller's CPU while they
sit idle; the kept case, the last, keeps --kept-sessions (default: the setting's default), or
fewer if they would leave less than 4 GiB of memory or 10% of pid_max free.

Run as root after `bash .ci/install` (about 25 minutes at the default size):
    .venv/bin/python -m tests.bench.bench_scale [--nodes 10000] [--peers 100] [--json]
`--quick` (50 x 10, a few seconds) only checks that every case works.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters import ssh
from orchestrator.adapters.store import open_store
from orchestrator.core.shard import Shard
from orchestrator.settings import Settings, load_settings
from tests.bench.bench_fleet import THREADS, _cpu, _node_targets, case_floor, case_sync, measure
from tests.bench.machine import (
    Child,
    kept_size,
    namespace_memory,
    peak_rss_mb,
    settle,
    status_kb,
)
from tests.bench.report import run_main
from tests.pgserver import fresh_database, throwaway_postgres, unavailable
from tests.synthetic_fleet import counters, expected_total, populate, settings_for
from tests.synthetic_nodes import SyntheticNodes, cached_rootfs

MODULE = "tests.bench.bench_scale"
RSS_TARGET = "<= 300 MB"
IDLE_SECONDS = 5  # the probe's kept sessions, idle, for their CPU cost


def _wait_for_parent() -> None:
    """The parent measures (the sessions now kept), may move the counters, then says go."""
    sys.stdin.readline()


# --- child cases: each runs in its own process -----------------------------------------------


def case_shard(settings: Settings, shard_text: str) -> dict[str, Any]:
    """One of two controllers: its shard of the fleet, fresh sessions, as cron runs it."""
    from orchestrator.service.context import open_fleet
    from orchestrator.service.sync import sync

    index, count = (int(part) for part in shard_text.split("/"))
    shard = Shard(index, count)
    started_at = time.time()
    with open_fleet(settings, write=True, shard=shard) as fleet:
        result = sync(fleet, shard=shard)
    assert result.ok, result.as_dict()["nodes_failed"]
    ok = sorted(n.node for n in result.nodes if n.ok)
    return {"started_at": started_at, "ended_at": time.time(), "nodes_ok": ok,
            "skipped": list(result.skipped)}  # fmt: skip


def case_kept(settings: Settings, _: str = "") -> dict[str, Any]:
    """`sync --every`'s own loop, two cycles: each cycle's figures on a line as it ends."""
    from orchestrator.service.sync_loop import LoopRun, sync_every

    cpu_mark = [_cpu()]

    def on_run(run: LoopRun) -> None:
        # A failed node is a finding of this case, not the end of the run: counted, one named.
        failed = {} if run.result is None else run.result.as_dict()["nodes_failed"]
        first = next(iter(failed.items()), ("", run.error))
        cycle = {
            "nodes_failed": len(failed) if run.result else "all",
            "first_failure": f"{first[0]}: {first[1]}" if first[1] else "",
            "cycle": run.number, "wall_s": run.seconds, "cpu_s": _cpu() - cpu_mark[0],
            "peak_rss_mb": peak_rss_mb(), "rss_mb": status_kb("VmRSS") / 1024,
            "sessions": run.sessions, "threads": threading.active_count(),
        }  # fmt: skip
        print(json.dumps(cycle), flush=True)
        if run.number == 1:
            _wait_for_parent()
        cpu_mark[0] = _cpu()

    sync_every(settings, 1.0, on_run, runs=2)
    return {}


def case_probe(settings: Settings, sessions: str) -> dict[str, Any]:
    """Open ``sessions`` kept sessions as the sync's pool does (one counters exec each) and
    report the controller's memory and threads per session while they stay open."""
    ssh_settings = settings.ssh
    targets = _node_targets(
        settings, "wgcollect", ssh_settings.collector_key, ssh_settings.collector_kex,
        int(sessions),
    )  # fmt: skip
    rss_before, threads_before = status_kb("VmRSS"), threading.active_count()
    with ssh.ConnectionPool() as pool:
        with ThreadPoolExecutor(max_workers=THREADS) as workers:  # gone before the count
            list(workers.map(lambda target: pool.run(target, "wgfleet-counters"), targets))
        kept = len(pool)
        rss, threads = status_kb("VmRSS"), threading.active_count()
        # Idle, a session's only CPU is its Transport thread's poll for its stop flag: paramiko
        # wakes it every 0.1 s, a kept session every ssh.KEPT_SESSION_POLL_SECONDS.
        cpu_idle = _cpu()
        time.sleep(IDLE_SECONDS)
        cores_idle = (_cpu() - cpu_idle) / IDLE_SECONDS
        print(json.dumps({
            "sessions": kept,
            "controller_kb_per_session": (rss - rss_before) / kept,
            "threads_per_session": (threads - threads_before) / kept,
            "controller_idle_cores_per_1000_sessions": cores_idle * 1000 / kept,
        }), flush=True)  # fmt: skip
        _wait_for_parent()
    return {}


CHILD_CASES: dict[str, Callable[..., dict[str, Any]]] = {
    "sync": case_sync,
    "floor": case_floor,
    "shard": case_shard,
    "kept": case_kept,
    "probe": case_probe,
}


def child_main(case: str, settings_file: str, argument: str = "") -> int:
    settings = load_settings(Path(settings_file))
    work = CHILD_CASES[case]
    print(json.dumps(measure(lambda: work(settings, argument) if argument else work(settings))))
    return 0


# --- the parent: children, the machine, the nodes --------------------------------------------


class SyntheticFleet:
    """A store of synthetic nodes and the counters they answer, moved between syncs."""

    def __init__(self, nodes: SyntheticNodes, url: str, peers: int, base: Path) -> None:
        self.nodes, self.url = nodes, url
        store = open_store(url)
        try:
            self.hosted = populate(store, nodes.addresses, peers)
        finally:
            store.close()
        self.scale = dict.fromkeys(self.hosted, 0)
        self.settings_file = settings_for(base, nodes, url)[1]
        self.counted = len(self.hosted) * peers

    def move(self, by: int = 1000) -> None:
        for name, keys in self.hosted.items():
            self.scale[name] += by
            text = counters("e1", keys, self.scale[name])
            self.nodes.write_counters(self.nodes.addresses[int(name[1:])], text)

    def keep_sessions(self, limit: int) -> None:
        """`ssh.kept_sessions` in the controller's settings file, as an operator sets it."""
        raw = yaml.safe_load(self.settings_file.read_text(encoding="utf-8"))
        raw["ssh"]["kept_sessions"] = limit
        self.settings_file.write_text(yaml.safe_dump(raw), encoding="utf-8")

    def check_totals(self, case: str) -> None:
        """The store's usage (rows and running total) is every counter synced exactly once."""
        store = open_store(self.url)
        try:
            want = expected_total(self.hosted, self.scale)
            got = (store.recomputed_totals().used, store.used_total())
        finally:
            store.close()
        if got != (want, want):
            raise SystemExit(f"{case}: usage {got}, expected {want} twice")


# --- the run ---------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> dict[str, Any]:
    reason = unavailable()
    if reason:
        raise SystemExit(f"postgresql: {reason}")
    rows: list[dict[str, Any]] = []
    case_load: dict[str, tuple[float, float]] = {}

    def settled(case: str) -> None:
        case_load[case] = settle(args.settle_busy, args.settle_cap, args.settle_window)
        print(f"[scale] {case} (load, busy: {case_load[case]})", file=sys.stderr, flush=True)

    def row(case: str, figures: dict[str, Any], counted: int, floor: dict[str, Any] | None,
            load_of: str, target: str = "") -> None:  # fmt: skip
        figures = {k: v for k, v in figures.items() if k in ("wall_s", "cpu_s", "peak_rss_mb")}
        rows.append({"case": case, **figures, "counters_per_s": counted / figures["wall_s"],
                     "ratio": figures["wall_s"] / floor["wall_s"] if floor else None,
                     "reference": "bare fetch" if floor else "", "load_1m": case_load[load_of][0],
                     "cpu_busy": case_load[load_of][1],
                     "target": target})  # fmt: skip
        print(f"[scale] {json.dumps(rows[-1])}", file=sys.stderr, flush=True)  # kept if cut short

    size = f"{args.nodes} x {args.peers}"
    with (
        tempfile.TemporaryDirectory(prefix="wgfleet-scale-") as tmp,
        throwaway_postgres(fsync=True) as server,
        SyntheticNodes(Path(tmp) / "nodes", cached_rootfs(), args.nodes, ipv6=True) as nodes,
        Child.reaped(),
    ):
        whole = SyntheticFleet(nodes, fresh_database(server), args.peers, Path(tmp) / "one")
        whole.move()
        settled("first")
        first = Child(MODULE, "sync", str(whole.settings_file)).finish()
        whole.check_totals("first sync")
        whole.move()
        settled("fresh")
        fresh = Child(MODULE, "sync", str(whole.settings_file)).finish()
        whole.check_totals("fresh sync")
        if args.sync_only:  # the two syncs' own figures (peak RSS), no reference
            row(f"sync {size}, first (all rows new)", first, whole.counted, None, "first")
            row(f"sync {size}, fresh sessions", fresh, whole.counted, None, "fresh", RSS_TARGET)
            return {**_header(args), "results": rows, "probe": {}, "kept": {}}
        settled("floor")
        floor = Child(MODULE, "floor", str(whole.settings_file)).finish()
        row(f"bare fetch {args.nodes} nodes (reference)", floor, whole.counted, None, "floor")
        row(f"sync {size}, first (all rows new)", first, whole.counted, floor, "first")
        row(f"sync {size}, fresh sessions", fresh, whole.counted, floor, "fresh", RSS_TARGET)
        rows.append(two_controllers(whole, Path(tmp), floor, settled, case_load, size))
        print(f"[scale] {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
        kept = kept_sessions(args, whole, floor, fresh, settled, row)
    return {**_header(args), "results": rows, **kept}


def _header(args: argparse.Namespace) -> dict[str, Any]:
    """What the report's title line says: when, what size, on how many cores."""
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nodes": args.nodes,
            "peers": args.peers, "cores": os.cpu_count()}  # fmt: skip


def two_controllers(whole: SyntheticFleet, tmp: Path, floor: dict[str, Any], settled: Callable[[str], None],
                    case_load: dict[str, tuple[float, float]], size: str) -> dict[str, Any]:  # fmt: skip
    files = [settings_for(tmp / label, whole.nodes, whole.url)[1] for label in ("a", "b")]
    whole.move()
    settled("pair")
    pair = [Child(MODULE, "shard", str(file), f"{i}/2") for i, file in enumerate(files, 1)]
    done = [child.finish() for child in pair]
    synced = [set(d["nodes_ok"]) for d in done]
    if synced[0] & synced[1] or synced[0] | synced[1] != set(whole.hosted):
        raise SystemExit("two controllers: a node synced twice or not at all")
    whole.check_totals("two controllers")
    wall = max(d["ended_at"] for d in done) - min(d["started_at"] for d in done)
    return {"case": f"sync {size}, two controllers (shards 1/2, 2/2)", "wall_s": wall,
            "cpu_s": sum(d["cpu_s"] for d in done),
            "peak_rss_mb": max(d["peak_rss_mb"] for d in done),
            "peak_rss_mb_each": [round(d["peak_rss_mb"]) for d in done],
            "nodes_each": [len(s) for s in synced], "counters_per_s": whole.counted / wall,
            "ratio": wall / floor["wall_s"], "reference": "bare fetch",
            "load_1m": case_load["pair"][0], "cpu_busy": case_load["pair"][1],
            "target": RSS_TARGET}  # fmt: skip


def kept_sessions(args: argparse.Namespace, fleet: SyntheticFleet, floor: dict[str, Any],
                  fresh: dict[str, Any], settled: Callable[[str], None],
                  row: Callable[..., None]) -> dict[str, Any]:  # fmt: skip
    """The probe, then two cycles of `sync --every` keeping as many sessions as asked and fit."""
    nodes = fleet.nodes
    sessions = min(args.probe, args.nodes)
    before = namespace_memory(nodes.netns), status_kb("MemAvailable", "/proc/meminfo")
    child = Child(MODULE, "probe", str(fleet.settings_file), str(sessions))
    probe = child.line()
    after = namespace_memory(nodes.netns), status_kb("MemAvailable", "/proc/meminfo")
    child.go()
    child.finish()
    probe.update(
        sshd_processes_per_session=(after[0][0] - before[0][0]) / sessions,
        sshd_kb_per_session=(after[0][1] - before[0][1]) * 1024 / sessions,
        memory_kb_per_session=(before[1] - after[1]) / sessions,
    )
    wanted = min(
        args.nodes, args.kept_sessions or load_settings(fleet.settings_file).ssh.kept_sessions
    )
    kept, why = kept_size(wanted, probe, fresh["peak_rss_mb"] * 1024)
    fleet.keep_sessions(kept)
    fleet.move()
    settled("kept 1")
    loop = Child(MODULE, "kept", str(fleet.settings_file))
    cycles = [loop.line()]
    sshd = namespace_memory(nodes.netns)
    fleet.move()
    settled("kept 2")
    loop.go()
    cycles.append(loop.line())
    loop.finish()
    if not any(cycle["nodes_failed"] for cycle in cycles):
        fleet.check_totals("kept sessions")
    label = f"sync {args.nodes} x {args.peers}, `sync --every` keeping {kept} sessions"
    for number, (cycle, what) in enumerate(zip(cycles, ("opens them", "on them"), strict=True)):
        failed = f"; {cycle['nodes_failed']} nodes FAILED" if cycle["nodes_failed"] else ""
        row(f"{label}, cycle {number + 1} ({what}{failed})", cycle, fleet.counted, floor,
            f"kept {number + 1}", RSS_TARGET)  # fmt: skip
    return {"probe": {k: round(v, 3) for k, v in probe.items()},
            "kept": {"kept_sessions": kept, "why": why, "sessions": cycles[0]["sessions"],
                     "sshd_processes": sshd[0], "sshd_pss_mb": round(sshd[1]),
                     "controller_rss_mb": round(cycles[0]["rss_mb"]),
                     "controller_threads": cycles[0]["threads"],
                     "failures": [c["first_failure"] for c in cycles]}}  # fmt: skip


def print_table(report: dict[str, Any]) -> None:
    """As Markdown, the way docs/PERFORMANCE.md shows it."""
    print(f"{report['nodes']:,} nodes x {report['peers']} peers on PostgreSQL, "
          f"{report['cores']} cores, {report['date']}\n")  # fmt: skip
    print("| case | at start: load 1 min, CPU busy | wall s | CPU s | peak RSS MB | counters/s "
          "| / fetch | target |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in report["results"]:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else ""
        rss = "/".join(str(m) for m in r.get("peak_rss_mb_each", [round(r["peak_rss_mb"])]))
        print(f"| {r['case']} | {r['load_1m']:.2f}, {r['cpu_busy']:.0%} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{rss} | {r['counters_per_s']:,.0f} | {ratio} | {r['target']} |")  # fmt: skip
    print(f"\nper kept session (probe): {json.dumps(report['probe'])}")
    print(f"kept case: {json.dumps(report['kept'])}")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--probe", type=int, default=500, help="sessions the probe keeps")
    parser.add_argument(
        "--kept-sessions", type=int, default=0, help="ssh.kept_sessions (default: its default)"
    )
    parser.add_argument("--settle-busy", type=float, default=0.1, help="CPU share (0-1)")
    parser.add_argument("--settle-cap", type=float, default=120, help="seconds")
    parser.add_argument("--settle-window", type=float, default=3, help="seconds")
    parser.add_argument("--quick", action="store_true", help="50 x 10, probe 20, no settling")
    parser.add_argument(
        "--sync-only", action="store_true", help="the first and the fresh sync alone (no ratio)"
    )


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        return child_main(*sys.argv[2:])

    def run(args: argparse.Namespace) -> dict[str, Any]:
        if args.quick:
            # 40 kept of 50: nodes beyond the pool's limit connect afresh every cycle.
            args.nodes, args.peers, args.probe, args.kept_sessions = 50, 10, 20, 40
            args.settle_cap, args.settle_window = 0, 0.2
        return bench(args)

    return run_main(__doc__, arguments, run, print_table)


if __name__ == "__main__":
    sys.exit(main())
