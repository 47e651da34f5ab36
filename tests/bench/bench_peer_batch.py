"""Benchmark: 200 configurations made with one `wgfleet peers add --from FILE` (one store
transaction, one push per node), against 200 `wgfleet peers add` commands (one push each), on
the same real lab node in the same run.

A real lab (1 node, 1 client, `lab_up` as tests/conftest.py makes it, state under a temporary
directory, `lab_down` afterwards whatever happens), the node deployed with the tests' `deploy`.
The reference runs first: COUNT `wgfleet peers add bench --nodes node1 --out FILE` processes one
after the other (what a billing backend does today, issue 23: "200 configurations take 120 s");
its configurations are then removed (untimed) so the node's /24 pool holds the batch. Then one
`wgfleet peers add --from batch.yml --out-dir DIR` with COUNT rows on node1. Both are timed
wall-clock, whole processes included. Checked after each: every key on the node
(`wg show wg0 peers`), every client config written 0600; after the batch, its one push to the
node added all COUNT peers.

Run as root after `bash .ci/install` (lab up and deploy take a few minutes on a loaded
machine); WGFLEET_TEST_LAB_NAME/_SUBNET name the lab (tests/worker_space.py):
    .venv/bin/python -m tests.bench.bench_peer_batch [--count 200] [--json]

Measured (2026-12-04, 2 shared cores, load average 3.0; docs/PERFORMANCE.md): 200 `peers add`
88.31 s, one `peers add --from` with 200 rows 0.85 s (104x), the node's one push adding 200.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from orchestrator.adapters import ssh
from orchestrator.core.lab_layout import plan_layout
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import open_fleet
from tests.bench.report import run_main
from tests.conftest import deploy_fleet, lab_forwarders, lab_settings
from tests.worker_space import session_lab

WGFLEET = str(Path(sys.executable).with_name("wgfleet"))
NODE = "node1"


def log(message: str) -> None:
    print(f"[bench_peer_batch] {message}", file=sys.stderr, flush=True)


def wgfleet(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [WGFLEET, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"wgfleet {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    return done


def bench(count: int) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise SystemExit("bench_peer_batch needs root (it builds a lab)")
    name, subnet = session_lab()
    with tempfile.TemporaryDirectory(prefix="wgfleet-bench-batch-") as tmp:
        base = Path(tmp)
        settings = lab_settings(base, name, subnet)
        config = base / "settings.yml"
        config.write_text(
            f"data_dir: {base / 'data'}\ninventory: {base / 'inventory'}\n"
            f"lab:\n  name: {name}\n  subnet: {subnet}\nipv6:\n  prefix: fd00:198:19::/48\n"
            f"dns:\n  forwarders: {json.dumps(lab_forwarders(name, subnet))}\n"
        )
        layout = plan_layout(name, settings.lab.subnet, 1, 1)
        try:
            started = time.perf_counter()
            lab_service.lab_up(settings, 1, 1)
            deployed = deploy_fleet(settings)
            assert deployed.ok, deployed.as_dict()
            log(f"lab up and deployed in {time.perf_counter() - started:.0f} s")
            with open_fleet(settings, write=True) as fleet:
                peers_service.add_account(fleet, "bench", "correct horse battery", "dev-b")

            def live() -> set[str]:
                target = lab_service.node_target(settings, layout.node(NODE))
                return set(ssh.run_on(target, ["wg", "show", "wg0", "peers"]).stdout.split())

            def keys(names: list[str]) -> set[str]:
                with open_fleet(settings) as fleet:
                    return {c.public_key for c in fleet.store.configurations(names=names)}

            one_dir = base / "one"
            one_dir.mkdir(mode=0o700)
            names = [f"one-{i}" for i in range(count)]
            started = time.perf_counter()
            for i, config_name in enumerate(names):
                wgfleet(
                    config, "peers", "add", "bench", "--nodes", NODE, "--name", config_name,
                    "--out", str(one_dir / f"{config_name}.conf"),
                )  # fmt: skip
                if i % 50 == 49:
                    log(f"one by one: {i + 1} in {time.perf_counter() - started:.0f} s")
            one_by_one = time.perf_counter() - started
            assert keys(names) <= live()
            wgfleet(config, "peers", "remove", "--yes", *names)
            assert not keys(names) & live()

            batch = base / "batch.yml"
            batch.write_text(
                "".join(
                    f"- {{account: bench, name: b-{i}, nodes: [{NODE}]}}\n" for i in range(count)
                )
            )
            out = base / "batch-out"
            started = time.perf_counter()
            done = wgfleet(
                config, "--json", "peers", "add", "--from", str(batch), "--out-dir", str(out)
            )
            batched = time.perf_counter() - started
            shown = json.loads(done.stdout)
            (push,) = shown["push"]["nodes"]
            assert push["ok"] and push["added"] == count, push
            assert keys([f"b-{i}" for i in range(count)]) <= live()
            assert len(os.listdir(out)) == count
            assert all(os.stat(out / f).st_mode & 0o777 == 0o600 for f in os.listdir(out))
        finally:
            lab_service.lab_down(settings)
    return {
        "count": count,
        "one_by_one_s": round(one_by_one, 2),
        "batch_s": round(batched, 2),
        "speedup": round(one_by_one / batched, 1),
        "load_average": os.getloadavg()[0],
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"{report['count']} configurations on one lab node")
    print(f"  one `peers add` each (one push each): {report['one_by_one_s']:8.2f} s")
    print(f"  one `peers add --from` (one push):    {report['batch_s']:8.2f} s")
    print(f"  speed-up: {report['speedup']}x (load average {report['load_average']:.1f})")


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=200)


def main() -> int:
    return run_main(__doc__, arguments, lambda args: bench(args.count), print_table)


if __name__ == "__main__":
    sys.exit(main())
