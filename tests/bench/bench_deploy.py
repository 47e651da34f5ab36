"""Benchmark: a converged `deploy` of real lab nodes against their first deploy.

A real lab (the one tests/worker_space.py derives for it, state under a temporary directory,
`lab_down` afterwards whatever happens) of 20 systemd-nspawn Debian nodes, deployed three times with the
same `deploy` the CLI runs:

| case | what runs | reference | target |
| --- | --- | --- | --- |
| first deploy | Ansible, every role changes everything (bare nodes) | itself | |
| converged deploy | the state probe on each node (one SSH exec as root) compared with the record of the last full run; no Ansible at all when every node is verified | first deploy | <= 0.4x |
| converged deploy, `--full` | Ansible on every node, which changes nothing | first deploy | (for comparison) |

Checked on every run: the first deploy changes every node; the converged one verifies every
node and runs no Ansible; the full converged run reports zero changes (idempotence). Wall time
and controller CPU (this process and its children: ansible-playbook and its forks; the nodes'
own CPU is not counted, but they share the same cores).

Run as root after `bash .ci/install` (about 12 minutes for 20 nodes, most of it Ansible):
    .venv/bin/python -m tests.bench.bench_deploy [--nodes 20] [--skip-full] [--json]

Measured on this machine (2 cores): see docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.service import deploy as deploy_service
from orchestrator.service import lab as lab_service
from tests.bench.bench_fleet import measure, print_table
from tests.bench.report import run_main
from tests.conftest import deploy_fleet, lab_settings
from tests.worker_space import derived_lab

LAB_NAME, LAB_SUBNET = derived_lab("bench-deploy")  # tests/worker_space.py


def bench(nodes: int, skip_full: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wgfleet-bench-deploy-") as base:
        settings = lab_settings(Path(base), LAB_NAME, LAB_SUBNET)
        try:
            lab_service.lab_up(settings, nodes, 0)
            names = sorted(deploy_service.node_host_vars(settings))
            results = []

            def first() -> dict[str, Any]:
                result = deploy_fleet(settings)
                changed = sorted(h.host for h in result.run.recap.hosts.values() if h.changed)
                if not result.ok or changed != names:
                    raise SystemExit(f"first deploy: {json.dumps(result.as_dict())[:2000]}")
                return {"changes": result.run.recap.changed_total}

            def converged() -> dict[str, Any]:
                result = deploy_fleet(settings)
                if not result.ok or result.verified != names or result.run.recap.hosts:
                    raise SystemExit(f"converged deploy: {json.dumps(result.as_dict())[:2000]}")
                return {"verified": len(result.verified)}

            def full() -> dict[str, Any]:
                result = deploy_fleet(settings, full=True)
                if not result.ok or result.run.recap.changed_total:
                    raise SystemExit(
                        f"full converged deploy: {json.dumps(result.as_dict())[:2000]}"
                    )
                return {"changes": 0}

            reference = measure(first)
            results.append({"case": f"first deploy, {nodes} bare nodes", **reference})
            cases = [("converged deploy (state verified, no Ansible)", converged, "<= 0.4")]
            if not skip_full:
                cases.append(("converged deploy --full (Ansible, 0 changes)", full, ""))
            for label, work, target in cases:
                figures = measure(work)
                ratio = figures["wall_s"] / reference["wall_s"]
                results.append({"case": label, **figures, "ratio": ratio, "target": target})
        finally:
            lab_service.lab_down(settings)
    return {"nodes": nodes, "peers": "-", "cores": os.cpu_count(), "results": results}


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--skip-full", action="store_true", help="no converged --full run")


def main() -> int:
    return run_main(__doc__, arguments, lambda args: bench(args.nodes, args.skip_full), print_table)


if __name__ == "__main__":
    sys.exit(main())
