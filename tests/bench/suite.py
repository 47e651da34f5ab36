"""The benchmark suite in one command: every benchmark in its own process, one table.

Each benchmark runs as `python -m tests.bench.NAME --json` (its own peak RSS, no state shared
between them); their rows are gathered into one table with each row's target and whether the
run met it. The whole suite takes about 37 minutes here, 25 of them the deploy benchmark's
first deploy of 20 lab nodes, plus about 25 for the 10,000-node scale benchmark; `--skip
deploy --skip scale` leaves them out, `--quick` runs a small fleet only to check that every
benchmark works.

Run (as root, after `bash .ci/install`):
    .venv/bin/python -m tests.bench.suite [--skip NAME ...] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from tests.bench.report import Report, run_main, target_met

MODULES = {
    "fleet": "bench_fleet",
    "store": "bench_sync_store",
    "tui": "bench_tui",
    "api": "bench_api_topups",
    "push": "bench_node_push",
    "deploy": "bench_deploy",
    "scale": "bench_scale",
}
BENCHMARKS = tuple(MODULES)
QUICK_ARGUMENTS = {
    "fleet": ["--nodes", "100", "--skip-ansible"],
    "store": ["--nodes", "100"],
    "tui": ["--configurations", "500", "--repeats", "3"],
    "api": ["--quick"],
    "scale": ["--quick"],
}
SYNC_STORE_TARGETS = {"sqlite": ">= 150,000/s", "postgresql": ">= 100,000/s"}


def run_benchmark(name: str, arguments: list[str]) -> Report:
    module = MODULES[name]
    print(f"[suite] {module} {' '.join(arguments)}", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, "-m", f"tests.bench.{module}", *arguments, "--json"],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": f"{module} exited {done.returncode}"}
    lines = done.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "{"]  # the report, not progress
    if not starts:
        return {"error": f"{module} printed no JSON report"}
    report: Report = json.loads("\n".join(lines[starts[-1] :]))
    return report


def rows_of(name: str, report: Report) -> list[Report]:
    """One benchmark's report as the suite's rows (case, wall, CPU, RSS, ratio, target)."""
    if "error" in report:
        return [{"case": report["error"], "met": False}]
    if name == "tui":
        count = report["configurations"]
        return [
            {"case": f"open the TUI, {count} configurations", "wall_s": report["open_s"],
             "target": "<= 1.5 s"},
            {"case": f"filter {count} configurations (median)",
             "wall_s": report["filter_s_median"], "target": "<= 100 ms"},
            {"case": "filter, typed, per keystroke", "wall_s": report["per_keystroke_s"]},
        ]  # fmt: skip
    if name == "store":
        rows = []
        for result in report["results"]:
            row = {**result, "case": f"store {result['backend']}: {result['case']}"}
            row["ratio"] = result.get("ratio_to_reference")
            if result["case"].startswith("apply all changed"):
                row["target"] = SYNC_STORE_TARGETS[result["backend"]]
            rows.append(row)
        return rows
    return [dict(row) for row in report["results"]]


def suite(skip: set[str], quick: bool) -> Report:
    names = [n for n in BENCHMARKS if n not in skip and not (quick and n in ("push", "deploy"))]
    rows = []
    for name in names:
        arguments = QUICK_ARGUMENTS.get(name, []) if quick else []
        for row in rows_of(name, run_benchmark(name, arguments)):
            # The targets are stated at full size (1,000 nodes x 100 peers, 5,000 configurations).
            row.setdefault("met", None if quick else target_met(row))
            rows.append({"benchmark": name, **row})
    return {"quick": quick, "benchmarks": names, "results": rows}


def print_table(report: Report) -> None:
    print(f"{'bench':<7}{'case':<58}{'wall s':>9}{'cpu s':>8}{'RSS MB':>8}{'ratio':>7}"
          f"{'per s':>9}  target")  # fmt: skip
    for r in report["results"]:
        cells: list[Any] = [
            f"{r[key]:.2f}" if isinstance(r.get(key), int | float) else ""
            for key in ("wall_s", "cpu_s")
        ]
        rss = f"{r['peak_rss_mb']:.0f}" if isinstance(r.get("peak_rss_mb"), int | float) else ""
        ratio = f"{r['ratio']:.2f}" if isinstance(r.get("ratio"), int | float) else ""
        rate = next(
            (
                r[k]
                for k in ("rows_per_s", "lines_per_s", "topups_per_s", "counters_per_s")
                if r.get(k)
            ),
            None,
        )
        per_s = (f"{rate / 1000:,.0f}k" if rate >= 10_000 else f"{rate:,.1f}") if rate else ""
        met = {True: "met", False: "NOT MET", None: ""}[r.get("met")]
        target = f"{r.get('target') or ''} {met}".strip()
        print(f"{r['benchmark']:<7}{r['case'][:57]:<58}{cells[0]:>9}{cells[1]:>8}{rss:>8}"
              f"{ratio:>7}{per_s:>9}  {target}")  # fmt: skip
    if report["quick"]:
        print("\n--quick: sizes below the targets' own, so no target is judged")
        return
    missed = [r["case"] for r in report["results"] if r.get("met") is False]
    print(f"\n{len(missed)} target(s) not met" + (": " + "; ".join(missed) if missed else ""))


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip", action="append", choices=BENCHMARKS, default=[])
    parser.add_argument("--quick", action="store_true", help="small sizes; no push, no deploy")


def missed(report: Report) -> int:
    return 1 if any(r.get("met") is False for r in report["results"]) else 0


def main() -> int:
    return run_main(
        __doc__, arguments, lambda args: suite(set(args.skip), args.quick), print_table, missed
    )


if __name__ == "__main__":
    sys.exit(main())
