"""The benchmark suite end to end at small sizes (`tests.bench.suite --quick`), so a benchmark
cannot rot between the runs that measure: each one runs in its own process against the real
parts (synthetic sshd nodes over IPv4 and IPv6, SQLite and a throwaway PostgreSQL, the headless TUI, `wgfleet serve`) and reports
its rows. No timing is judged here: figures belong to the benchmarks, not to tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

PROJECT = Path(__file__).resolve().parents[2]


def test_the_quick_suite_runs_every_benchmark_it_names() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.suite", "--quick", "--json"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["quick"] and report["benchmarks"] == ["fleet", "store", "tui", "api", "scale"]
    rows = report["results"]
    failed = [r["case"] for r in rows if r.get("met") is False]  # a benchmark that broke
    assert not failed, failed
    for name in report["benchmarks"]:
        measured = [r for r in rows if r["benchmark"] == name and r.get("wall_s")]
        assert measured, f"{name} reported no measured case"
    cases = {r["case"] for r in rows}
    assert "sync 100 nodes x 100 peers, steady, vs floor" in cases
    assert "store postgresql: apply all changed (accounting + store)" in cases
    assert "API top-ups, 4 clients, during 20-node syncs" in cases
    assert "sync 50 x 10, two controllers (shards 1/2, 2/2)" in cases
    assert "sync 50 x 10, `sync --every` keeping 40 sessions, cycle 2 (on them)" in cases
