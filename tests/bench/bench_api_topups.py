"""Benchmark: top-ups per second through the HTTP API, alone and during a 300-node sync.

The real server (`wgfleet serve`, uvicorn on 127.0.0.1, a process of its own as an operator
runs it) over a seeded SQLite store of N configurations on synthetic nodes
(tests/synthetic_nodes.py: one real OpenSSH server answering for every node address) and a
billing token; K concurrent HTTP clients (httpx, one connection each) send M top-ups, each a
distinct invoice. Measured per case: top-ups per second over the whole run, p50 and p99 of a
request's latency.

| case | what runs beside it |
| API, alone | nothing |
| API, during syncs | `sync` of every synthetic node, back to back in processes of their own |
| reference | one `wgfleet topup` process per top-up (how a backend calls wgfleet without the API), K at a time, fewer top-ups |

The ratio printed is the API's rate over the reference's (higher is better). During the syncs a
top-up must not wait behind the fleet lock a sync holds (a store-only session, service.context
`writes_store`): the row reports how many syncs ran while the top-ups went and the sync's own
wall time, and the top-ups' p99 must stay below that wall time. After every case the ledger is
checked: each invoice recorded exactly once with its bytes, the running totals equal their
recomputation (service.usage.usage_check), no answer but 201 (so no 5xx); any miss ends the
benchmark with an error.

Run as root after `bash .ci/install` (1-2 minutes at the default size):
    .venv/bin/python -m tests.bench.bench_api_topups [--nodes 300] [--peers 10] [--topups 1000]
        [--reference-topups 48] [--clients 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from orchestrator.adapters.store import open_store
from orchestrator.service.context import open_fleet
from orchestrator.service.tokens import add_token
from orchestrator.service.usage import usage_check
from orchestrator.settings import Settings
from tests.bench.bench_fleet import run_child
from tests.bench.report import run_main
from tests.synthetic_fleet import counters, populate, settings_for
from tests.synthetic_nodes import SyntheticNodes, cached_rootfs

WGFLEET = str(Path(sys.executable).with_name("wgfleet"))
AMOUNT = "1.00"
GRANTED = 1_000_000  # bytes per top-up: far below the store's per-configuration bound
SERVER_START_S = 60.0


# --- the fleet -------------------------------------------------------------------------------


class Fleet:
    """The synthetic nodes, the seeded store, its settings file and a billing token."""

    def __init__(self, nodes: SyntheticNodes, workdir: Path, peers: int) -> None:
        self.nodes = nodes
        store_url = f"sqlite:///{workdir / 'store.db'}"
        store = open_store(store_url)
        try:
            self.hosted = populate(store, nodes.addresses, peers)
        finally:
            store.close()
        self.configurations = [f"c{c}" for c in range(len(nodes.addresses) * peers)]
        self.settings, self.settings_file = settings_for(workdir / "controller", nodes, store_url)
        with open_fleet(self.settings, write=True) as fleet:
            self.token = add_token(fleet, "billing-bench", ["billing"]).text
        self.counter_scale = 1000
        self.move_counters()

    def move_counters(self) -> None:
        """Every node's counters grow: the next sync accounts every configuration."""
        self.counter_scale += 1000
        for name, keys in self.hosted.items():
            text = counters("e1", keys, self.counter_scale)
            self.nodes.write_counters(self.nodes.addresses[int(name[1:])], text)


class SyncsBeside:
    """Syncs back to back in a thread (each a process of its own) until stopped."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.walls: list[float] = []
        self.failure: BaseException | None = None
        self.running = threading.Event()  # set once the first sync's process is started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.fleet.move_counters()
                self.running.set()
                self.walls.append(run_child("sync", self.fleet.settings_file)["wall_s"])
        except BaseException as error:  # reported by stop(), in the benchmark's thread
            self.failure = error
            self.running.set()

    def __enter__(self) -> SyncsBeside:
        self._thread.start()
        self.running.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()  # the sync under way finishes: none is left running
        if self.failure is not None and exc[0] is None:
            raise SystemExit(f"a sync beside the top-ups failed: {self.failure}")


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`wgfleet serve` on 127.0.0.1, stopped with SIGTERM (killed if it does not stop)."""

    def __init__(self, settings_file: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        argv = [WGFLEET, "--config", str(settings_file), "serve"]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [*argv, "--listen", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + SERVER_START_S
        while True:  # readiness: the port accepts a connection
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise SystemExit(
                        f"wgfleet serve did not listen: {self.log.read_text()}"
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process.returncode is not None or self.process.poll() is not None:
            print(f"wgfleet serve exited {self.process.returncode}: {self.log.read_text()[-2000:]}",
                  file=sys.stderr)  # fmt: skip
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- sending top-ups -------------------------------------------------------------------------


def invoices(case: str, count: int, configurations: list[str]) -> list[tuple[str, str]]:
    """(invoice, configuration) pairs: distinct invoices spread over the configurations."""
    step = max(1, len(configurations) // count)
    return [
        (f"BENCH-{case}-{i}", configurations[(i * step) % len(configurations)])
        for i in range(count)
    ]


async def _send_all(
    url: str, token: str, work: list[tuple[str, str]], clients: int
) -> tuple[list[float], dict[int, int]]:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        # One connection per client, kept alive, as a backend's HTTP client pool does.
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
            while not queue.empty():
                invoice, configuration = queue.get_nowait()
                body = {"configuration": configuration, "invoice": invoice,
                        "amount": AMOUNT, "bytes": GRANTED}  # fmt: skip
                started = time.perf_counter()
                try:
                    answer = await http.post("/v1/topups", json=body)
                    status = answer.status_code
                    if status != 201:  # what the ledger check will count, explained
                        print(f"{invoice}: {status} {answer.text[:300]}", file=sys.stderr)
                except httpx.TransportError as error:  # counted: the ledger check reports it
                    print(f"{invoice}: {error!r}", file=sys.stderr)
                    status = 0
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


def through_api(url: str, token: str, work: list[tuple[str, str]], clients: int) -> dict[str, Any]:
    started = time.perf_counter()
    latencies, statuses = asyncio.run(_send_all(url, token, work, clients))
    return figures(len(work), time.perf_counter() - started, latencies, statuses)


def through_cli(settings_file: Path, work: list[tuple[str, str]], clients: int) -> dict[str, Any]:
    """The reference: one `wgfleet topup` process per top-up, ``clients`` at a time."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(reversed(work))

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                invoice, configuration = queue.pop()
            argv = [WGFLEET, "--config", str(settings_file), "--quiet", "topup", configuration,
                    "--amount", AMOUNT, "--invoice", invoice, "--bytes", str(GRANTED)]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                # An exit code stands where the API has a status: 0 is the API's 201.
                status = 201 if done.returncode == 0 else 1000 + done.returncode
                statuses[status] = statuses.get(status, 0) + 1
                if done.returncode != 0:
                    sys.stderr.write(done.stderr[-400:])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return figures(len(work), time.perf_counter() - started, latencies, statuses)


def figures(
    count: int, wall: float, latencies: list[float], statuses: dict[int, int]
) -> dict[str, Any]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "topups": count,
        "wall_s": wall,
        "topups_per_s": count / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": cuts[98] * 1000,
        "max_ms": max(latencies) * 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


# --- correctness -----------------------------------------------------------------------------


def check_ledger(settings: Settings, case: str, work: list[tuple[str, str]],
                 measured: dict[str, Any]) -> None:  # fmt: skip
    """Every invoice of the case granted exactly once with its bytes, totals exact, only 201s."""
    problems = []
    if measured["statuses"] != {"201": len(work)}:
        problems.append(f"answers {measured['statuses']}, expected {len(work)} x 201")
    with open_fleet(settings) as fleet:
        recorded = [t for t in fleet.store.topups() if t.invoice.startswith(f"BENCH-{case}-")]
        mismatches = usage_check(fleet)
    by_invoice = {t.invoice: t for t in recorded}
    if len(recorded) != len(work) or len(by_invoice) != len(work):
        problems.append(f"{len(recorded)} top-ups recorded ({len(by_invoice)} invoices), "
                        f"expected {len(work)}")  # fmt: skip
    wrong = [
        invoice
        for invoice, configuration in work
        if invoice not in by_invoice
        or (by_invoice[invoice].configuration, by_invoice[invoice].bytes_granted)
        != (configuration, GRANTED)
    ]
    if wrong:
        problems.append(f"{len(wrong)} invoices missing or wrong, e.g. {wrong[:3]}")
    if mismatches:
        problems.append(f"usage check: {mismatches[:3]}")
    if problems:
        raise SystemExit(f"case {case}: " + "; ".join(problems))


# --- the run ---------------------------------------------------------------------------------


def bench(
    node_count: int, peers: int, topups: int, reference_topups: int, clients: int
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]  # the machine's other work, said beside the figures
    rootfs = cached_rootfs()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="wgfleet-bench-api-") as tmp:
        workdir = Path(tmp)
        with SyntheticNodes(workdir / "nodes", rootfs, node_count) as nodes:
            fleet = Fleet(nodes, workdir, peers)
            # Every usage row exists from now on.
            first_sync = run_child("sync", fleet.settings_file)

            def case(name: str, run: Callable[[list[tuple[str, str]]], dict[str, Any]],
                     count: int) -> dict[str, Any]:  # fmt: skip
                work = invoices(name, count, fleet.configurations)
                measured = run(work)
                check_ledger(fleet.settings, name, work, measured)
                return measured

            with Server(fleet.settings_file, workdir / "serve.log") as server:
                api = case(
                    "alone", lambda w: through_api(server.url, fleet.token, w, clients), topups
                )
                with SyncsBeside(fleet) as syncs:
                    during = case(
                        "sync",
                        lambda w: through_api(server.url, fleet.token, w, clients),
                        topups,
                    )
                syncs_seen = len(syncs.walls)
            reference = case(
                "cli", lambda w: through_cli(fleet.settings_file, w, clients), reference_topups
            )
    sync_wall = statistics.median(syncs.walls)
    configurations = len(fleet.configurations)
    rows.append({"case": f"API top-ups, {clients} clients, alone", **api,
                 "ratio": api["topups_per_s"] / reference["topups_per_s"],
                 "reference": "wgfleet topup per request"})  # fmt: skip
    rows.append({"case": f"API top-ups, {clients} clients, during {node_count}-node syncs",
                 **during, "ratio": during["topups_per_s"] / reference["topups_per_s"],
                 "reference": "wgfleet topup per request", "syncs_during": syncs_seen,
                 "sync_wall_s": sync_wall,
                 "target": "p99 below one sync's wall time"})  # fmt: skip
    rows.append({"case": f"reference: one `wgfleet topup` process each, {clients} at a time",
                 **reference, "target": "reference"})  # fmt: skip
    rows.append({"case": f"sync of {node_count} nodes x {peers} peers (beside)",
                 "wall_s": sync_wall, "first_sync_s": first_sync["wall_s"]})  # fmt: skip
    waited = during["p99_ms"] / 1000 >= sync_wall
    if node_count >= 100:  # a small fleet's sync is too short to judge against
        rows[1]["met"] = not waited
    return {
        "nodes": node_count,
        "configurations": configurations,
        "clients": clients,
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "during_sync_waited": waited,
        "results": rows,
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"{report['configurations']} configurations on {report['nodes']} synthetic nodes, "
          f"{report['clients']} clients, {report['cores']} cores, load {report['load_before']:.1f}"
          f" before, {report['load_after']:.1f} after")  # fmt: skip
    print(f"{'case':<62}{'n':>6}{'wall s':>8}{'per s':>8}{'p50 ms':>8}{'p99 ms':>8}{'x ref':>7}")
    for r in report["results"]:
        cells = [
            f"{r[key]:{fmt}}" if isinstance(r.get(key), int | float) else ""
            for key, fmt in (("topups", "d"), ("wall_s", ".2f"), ("topups_per_s", ".1f"),
                             ("p50_ms", ".0f"), ("p99_ms", ".0f"), ("ratio", ".1f"))
        ]  # fmt: skip
        print(f"{r['case'][:61]:<62}{cells[0]:>6}{cells[1]:>8}{cells[2]:>8}{cells[3]:>8}"
              f"{cells[4]:>8}{cells[5]:>7}")  # fmt: skip
        if "syncs_during" in r:
            print(f"    {r['syncs_during']} syncs ran beside it, {r['sync_wall_s']:.2f} s each; "
                  f"slowest top-up {r['max_ms'] / 1000:.2f} s")  # fmt: skip
    waited = report["during_sync_waited"]
    print("top-ups during syncs " + ("WAITED behind a sync" if waited else "did not wait"))


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--peers", type=int, default=10, help="configurations per node")
    parser.add_argument("--topups", type=int, default=1000, help="per API case")
    parser.add_argument("--reference-topups", type=int, default=48)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a small run: does it work")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return bench(20, 5, 40, 6, 4)
    return bench(args.nodes, args.peers, args.topups, args.reference_topups, args.clients)


def main() -> int:
    return run_main(__doc__, arguments, run, print_table)


if __name__ == "__main__":
    sys.exit(main())
