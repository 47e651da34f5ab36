"""Benchmark: parse + accounting + store write of one sync, 1,000 nodes x 100 peers.

The real code path of `wgfleet sync` after the SSH fetch: `parse_counters` on each node's
answer, then `account_reports` (exact accounting, one transaction for the run) into the store,
on SQLite (WAL, synchronous=FULL) and on a throwaway PostgreSQL server (fsync on). Each figure
is also given as a ratio to a reference measured in the same run: the same rows written with a
plain executemany (SQLite) or COPY (PostgreSQL) into a bare table, the floor of any store.
On PostgreSQL it also prints how many of the runs' usage_totals updates stayed HOT (on the
same page, no new index entry), which is what the table's free space per page is for.

Run (as root, after `bash .ci/install`):
    .venv/bin/python -m tests.bench.bench_sync_store [--nodes 1000] [--peers 100] [--json]
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator.adapters.sealing import FleetKey, Keyring
from orchestrator.adapters.secrets import SecretStore
from orchestrator.adapters.store import SqlStore, open_store
from orchestrator.core.collector import CounterReport, parse_counters
from orchestrator.service.context import Fleet
from orchestrator.service.sync import account_reports

TODAY = date(2026, 11, 23)


def keys(count: int, seed: int) -> list[str]:
    return [
        base64.b64encode(seed.to_bytes(4, "big") + i.to_bytes(28, "big")).decode()
        for i in range(count)
    ]


def populate(store: SqlStore, nodes: int, peers: int) -> list[list[str]]:
    """nodes x peers configurations, each on one node; bulk SQL (set-up is not measured)."""
    store.upgrade()
    node_keys = []
    with store.transaction():
        store.db.execute(
            "INSERT INTO accounts (username, password_hash, device_id) VALUES ('bench', 'x', 'x')"
        )
        account_id = store.db.execute("SELECT id FROM accounts WHERE username = 'bench'")[0][0]
        pools = ipaddress.IPv4Network("198.19.0.0/16").subnets(new_prefix=26)
        store.db.executemany(
            "INSERT INTO nodes (name, address, tunnel_network) VALUES (?, ?, ?)",
            [(f"n{i}", f"198.18.{i // 250}.{i % 250 + 1}", str(next(pools))) for i in range(nodes)],
        )
        rows = []
        for i in range(nodes):
            ks = keys(peers, i)
            node_keys.append(ks)
            rows += [(f"c{i}-{j}", account_id, k) for j, k in enumerate(ks)]
        store.db.executemany(
            "INSERT INTO configurations (name, account_id, public_key) VALUES (?, ?, ?)", rows
        )
        # Each on its node: a sync believes a node's counters only for peers placed there.
        ids = dict(store.db.execute("SELECT name, id FROM configurations"))
        store.db.executemany(
            "INSERT INTO configuration_nodes (configuration_id, node, tunnel_address) "
            "VALUES (?, ?, ?)",
            [
                (ids[f"c{i}-{j}"], f"n{i}", f"198.19.{j // 250}.{j % 250 + 1}")
                for i in range(nodes)
                for j in range(peers)
            ],
        )
    return node_keys


def answers(node_keys: list[list[str]], epoch: str, scale: int) -> list[str]:
    return [
        f"epoch {epoch}\n"
        + "".join(f"{k}\t{(j + 1) * scale}\t{(j + 2) * scale}\n" for j, k in enumerate(ks))
        for ks in node_keys
    ]


def measure(work: Callable[[], Any]) -> dict[str, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    work()
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0}


def sync_once(fleet: Fleet, texts: list[str]) -> None:
    """What `sync` does once the answers are in: parse, then one transaction for the run."""
    apply_once(fleet, [parse_counters(text) for text in texts])


def apply_once(fleet: Fleet, reports: list[CounterReport]) -> None:
    """Accounting + store only: the answers are parsed already."""
    account_reports(fleet, {f"n{i}": report for i, report in enumerate(reports)}, TODAY)


def reference(store: SqlStore, texts: list[str]) -> None:
    rows = [
        (f"n{i}", *line.split("\t")) for i, t in enumerate(texts) for line in t.splitlines()[1:]
    ]
    if store.db.dialect == "sqlite":
        with store.transaction():
            store.db.execute("CREATE TEMP TABLE ref (node TEXT, k TEXT, rx BIGINT, tx BIGINT)")
            store.db.executemany("INSERT INTO ref VALUES (?, ?, ?, ?)", rows)
        return
    raw = store.db._db
    with raw.transaction(), raw.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE ref (node TEXT, k TEXT, rx BIGINT, tx BIGINT)")
        with cursor.copy("COPY ref FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def hot_share(store: SqlStore) -> dict[str, Any]:
    """Share of usage_totals updates PostgreSQL made on the same page (HOT: no index entry)."""
    store.db.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, now
    updated, hot = store.db.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'usage_totals'"
    )[0]
    return {
        "updates": int(updated),
        "hot": int(hot),
        "hot_share": hot / updated if updated else None,
    }


@contextmanager
def backend(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    from tests.pgserver import fresh_database, throwaway_postgres, unavailable

    reason = unavailable()
    if reason:
        raise SystemExit(f"postgresql: {reason}")
    with throwaway_postgres(fsync=True) as server:
        yield fresh_database(server)


def run(kind: str, nodes: int, peers: int) -> list[dict[str, Any]]:
    results = []
    with backend(kind) as url:
        store = open_store(url)
        node_keys = populate(store, nodes, peers)
        keyring = Keyring(FleetKey.from_secret(os.urandom(32)))
        secrets = SecretStore(store, lambda: keyring)
        fleet = Fleet(settings=None, store=store, secrets=secrets, writes=True)  # type: ignore[arg-type]
        first, second = answers(node_keys, "e1", 1000), answers(node_keys, "e1", 1500)
        third = answers(node_keys, "e1", 2000)
        parse_only = measure(lambda: [parse_counters(t) for t in first])
        for label, texts in (
            ("first sync (all peers new)", first),
            ("steady sync (all changed)", second),
        ):
            figures = measure(lambda texts=texts: sync_once(fleet, texts))
            results.append({"backend": kind, "case": label, **figures})
        replay = measure(lambda: sync_once(fleet, second))
        results.append({"backend": kind, "case": "replay (adds 0)", **replay})
        parsed = [parse_counters(t) for t in third]
        applied = measure(lambda: apply_once(fleet, parsed))
        results.append(
            {"backend": kind, "case": "apply all changed (accounting + store)", **applied}
        )
        floor = measure(lambda: reference(store, second))
        rows = nodes * peers
        for result in results:
            result["rows"] = rows
            result["rows_per_s"] = rows / result["wall_s"]
            result["ratio_to_reference"] = result["wall_s"] / floor["wall_s"]
        reference_name = (
            "executemany into a bare table" if kind == "sqlite" else "COPY into a bare table"
        )
        results.append(
            {
                "backend": kind,
                "case": f"reference: {reference_name}",
                **floor,
                "rows": rows,
                "rows_per_s": rows / floor["wall_s"],
                "ratio_to_reference": 1.0,
            }
        )
        results.append(
            {
                "backend": kind,
                "case": "strict parse only",
                **parse_only,
                "rows": rows,
                "rows_per_s": rows / parse_only["wall_s"],
                "ratio_to_reference": None,
            }
        )
        if kind == "postgresql":
            results.append(
                {
                    "backend": kind,
                    "case": "usage_totals updates that stayed HOT",
                    **hot_share(store),
                }
            )
        usage = sum(u.total for u in store.usage())
        expected = sum((j + 1) * 2000 + (j + 2) * 2000 for j in range(peers)) * nodes
        assert usage == expected, f"{kind}: accounted {usage}, expected {expected}"
        store.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--peers", type=int, default=100)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [r for kind in kinds for r in run(kind, args.nodes, args.peers)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(
            json.dumps(
                {
                    "nodes": args.nodes,
                    "peers": args.peers,
                    "peak_rss_mb": peak_mb,
                    "results": results,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"{args.nodes} nodes x {args.peers} peers = {args.nodes * args.peers} counters; peak RSS {peak_mb:.0f} MB; "
        f"{os.cpu_count()} cores"
    )
    print(f"{'backend':<11}{'case':<42}{'wall s':>8}{'cpu s':>8}{'rows/s':>11}{'x ref':>7}")
    for r in results:
        if "hot_share" in r:
            print(f"{r['backend']:<11}{r['case']:<42}{r['hot']:,} of {r['updates']:,}")
            continue
        ratio = "" if r["ratio_to_reference"] is None else f"{r['ratio_to_reference']:.1f}"
        print(
            f"{r['backend']:<11}{r['case']:<42}{r['wall_s']:>8.2f}{r['cpu_s']:>8.2f}{r['rows_per_s']:>11,.0f}{ratio:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
