"""The main job on the embedded default: a lab fleet, deployed, with real users and usage.

Builds (or reuses) the lab, deploys every node, gives each lab client a configuration of a
demo account on one node, brings its tunnel up from the client config exactly as a user would,
pushes some traffic through it, and syncs the counters into the SQLite store.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from orchestrator.adapters.lab.clients import ping_from
from orchestrator.core.lab_layout import plan_layout
from orchestrator.core.models import Plan
from orchestrator.errors import LabError
from orchestrator.service import deploy as deploy_service
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service import sync as sync_service
from orchestrator.service.context import open_fleet
from orchestrator.service.usage import quota_statuses
from orchestrator.settings import Settings

DEMO_ACCOUNT = "demo"
DEMO_PLAN = Plan("demo", 1 << 30)


@dataclass(frozen=True)
class DemoResult:
    lab: lab_service.LabStatus
    deploy: deploy_service.DeployResult
    sync: sync_service.SyncResult
    usage: dict[str, tuple[int, int | None]]  # configuration -> (used, allowance)

    @property
    def ok(self) -> bool:
        return self.lab.healthy and self.deploy.ok and self.sync.ok


def run_demo(
    settings: Settings, nodes: int, clients: int, progress: Callable[[str], None]
) -> DemoResult:
    lab_service.lab_up(settings, nodes, clients, progress)
    progress("deploying hardened no-log WireGuard nodes (Ansible)")
    with open_fleet(settings, write=True, timeout=None, operation="demo") as fleet:
        deployed = deploy_service.deploy(fleet)
        if not deployed.ok:
            raise LabError(f"deploy failed on {', '.join(deployed.failed_hosts)}")
        layout = plan_layout(settings.lab.name, settings.lab.subnet, nodes, clients)
        fleet.store.upsert_plan(DEMO_PLAN)
        if DEMO_ACCOUNT not in {a.username for a in fleet.store.accounts()}:
            peers_service.add_account(fleet, DEMO_ACCOUNT, secrets.token_urlsafe(16), "lab-demo")
        for client in layout.clients:
            node = layout.nodes[(client.index - 1) % len(layout.nodes)]
            name = f"{DEMO_ACCOUNT}-{client.name}"
            # The private key of an earlier run is gone by design: issue a fresh config.
            if name in fleet.store.configuration_names(name):
                peers_service.remove_configurations(fleet, [name])
            created = peers_service.add_configuration(
                fleet, DEMO_ACCOUNT, nodes=[node.name], plan=DEMO_PLAN.name, name=name
            )
            lab_service.tunnel_up(settings, client.name, created.client_configs[node.name])
            progress(f"{client.name}: tunnel to {node.name} up; sending traffic")
            ping_from(client.netns, str(node.tunnel_address), count=20, interval=0.05, size=1200)
        progress("syncing counters into the store")
        synced = sync_service.sync(fleet)
        statuses = quota_statuses(fleet, date.today())
        usage = {
            name: (status.used, status.allowance)
            for name, status in statuses.items()
            if name.startswith(f"{DEMO_ACCOUNT}-")
        }
    return DemoResult(lab_service.lab_status(settings), deployed, synced, usage)
