"""Deploy the node roles with Ansible, and report host by host."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.adapters import ansible, keyfiles
from orchestrator.core.playbook_events import PlayRecap
from orchestrator.errors import ConfigError
from orchestrator.settings import Settings

OnUpdate = Callable[[PlayRecap, Mapping[str, Any]], None]


@dataclass(frozen=True)
class DeployResult:
    run: ansible.PlaybookRun

    @property
    def failed_hosts(self) -> list[str]:
        return self.run.recap.failed_hosts

    @property
    def ok(self) -> bool:
        return self.run.status == "successful" and not self.failed_hosts

    def as_dict(self) -> dict[str, Any]:
        return {
            "playbook": self.run.playbook,
            "check": self.run.check,
            "status": self.run.status,
            "ok": self.ok,
            "changed": self.run.recap.changed_total,
            "failed_hosts": self.failed_hosts,
            "hosts": {
                name: {
                    "status": h.status,
                    "ok": h.ok,
                    "changed": h.changed,
                    "failed": h.failed,
                    "unreachable": h.unreachable,
                    "skipped": h.skipped,
                    "error": h.error,
                    "changed_tasks": list(h.changed_tasks),
                }
                for name, h in sorted(self.run.recap.hosts.items())
            },
        }


def inventory_path(settings: Settings) -> Path:
    """The inventory file: the settings may name the file or its directory."""
    path = settings.inventory
    if path.is_dir():
        for name in ("hosts.yml", "hosts.yaml", "hosts"):
            if (path / name).exists():
                return path / name
        raise ConfigError(
            settings.source,
            "inventory",
            str(path),
            "directory holds no hosts.yml (run `wgfleet lab up`?)",
        )
    return path


def ansible_work_dir(settings: Settings) -> Path:
    return settings.data_dir / "ansible"


def node_extravars(settings: Settings) -> dict[str, Any]:
    """What the roles need from the controller: public halves only, never a private key."""
    keyfiles.ensure_ssh_keypair(settings.ssh.collector_key, "wgfleet-collector")
    return {"wgfleet_collector_public_key_file": str(settings.ssh.collector_key) + ".pub"}


def deploy(
    settings: Settings,
    *,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    on_update: OnUpdate | None = None,
    cancelled: Callable[[], bool] | None = None,
    extravars: Mapping[str, Any] | None = None,
) -> DeployResult:
    run = ansible.run_playbook(
        project_root=settings.project_root,
        work_dir=ansible_work_dir(settings),
        inventory=inventory_path(settings),
        playbook="site.yml",
        limit=limit,
        check=check,
        diff=diff,
        extravars={**node_extravars(settings), **dict(extravars or {})},
        on_update=on_update,
        cancelled=cancelled,
    )
    return DeployResult(run)
