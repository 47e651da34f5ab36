"""Deploy the node roles with Ansible, and report host by host."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters import ansible, keyfiles
from orchestrator.core.inventory import inventory_hosts
from orchestrator.core.models import Node
from orchestrator.core.peers import valid_key
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
                    "diffs": list(h.diffs),
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


def fleet_nodes_path(settings: Settings) -> Path:
    """Node settings applied from a fleet file, laid over the inventory at every deploy."""
    return settings.data_dir / "fleet-nodes.yml"


def inventory_sources(settings: Settings) -> list[Path]:
    """What Ansible reads: the inventory, then the fleet file's node settings (later wins)."""
    overlay = fleet_nodes_path(settings)
    return [inventory_path(settings), *([overlay] if overlay.exists() else [])]


def node_host_vars(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each inventory host's variables as a deploy sees them, fleet file settings included."""
    path = inventory_path(settings)
    try:
        hosts = inventory_hosts(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except OSError as exc:
        raise ConfigError(str(path), "inventory", str(path), exc.strerror or str(exc)) from None
    overlay = fleet_nodes_path(settings)
    if overlay.exists():
        extra = inventory_hosts(yaml.safe_load(overlay.read_text(encoding="utf-8")) or {})
        for name, variables in extra.items():
            if name in hosts:
                hosts[name] = {**hosts[name], **variables}
    return hosts


def write_fleet_nodes(settings: Settings, node_vars: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace the fleet file's node settings (atomically: a deploy never reads half a file)."""
    path = fleet_nodes_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {"all": {"hosts": {name: dict(v) for name, v in sorted(node_vars.items()) if v}}}
    header = "# Written by `wgfleet apply -f`: node settings from the fleet file. Do not edit.\n"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(header + yaml.safe_dump(document, sort_keys=True), encoding="utf-8")
    temporary.replace(path)


def ansible_work_dir(settings: Settings) -> Path:
    return settings.data_dir / "ansible"


def node_extravars(settings: Settings) -> dict[str, Any]:
    """What the roles need from the controller: public halves only, never a private key."""
    keyfiles.ensure_ssh_keypair(settings.ssh.collector_key, "wgfleet-collector")
    keyfiles.ensure_ssh_keypair(settings.ssh.push_key, "wgfleet-push")
    return {
        "wgfleet_collector_public_key_file": str(settings.ssh.collector_key) + ".pub",
        "wgfleet_push_public_key_file": str(settings.ssh.push_key) + ".pub",
        "wgfleet_listen_ports": listen_ports(settings),
    }


def listen_ports(settings: Settings) -> dict[str, int]:
    """The port each registered node listens on now (a node key rotation may have moved it)."""
    from orchestrator.service.context import open_fleet

    with open_fleet(settings) as fleet:
        return {n.name: n.listen_port for n in fleet.store.nodes()}


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
    public_keys: dict[str, str] = {}

    def watch(recap: PlayRecap, event: Mapping[str, Any]) -> None:
        data = event.get("event_data") or {}
        result = data.get("res") or {}
        if event.get("event") == "runner_on_ok" and isinstance(result, Mapping):
            key = result.get("wireguard_public_key")
            if isinstance(key, str) and valid_key(key):
                public_keys[str(data.get("host"))] = key
        if on_update is not None:
            on_update(recap, event)

    run = ansible.run_playbook(
        project_root=settings.project_root,
        work_dir=ansible_work_dir(settings),
        inventory=inventory_sources(settings),
        playbook="site.yml",
        limit=limit,
        check=check,
        diff=diff,
        extravars={**node_extravars(settings), **dict(extravars or {})},
        on_update=watch,
        cancelled=cancelled,
    )
    if not check and public_keys:
        register_nodes(settings, public_keys)
    return DeployResult(run)


def register_nodes(
    settings: Settings, public_keys: Mapping[str, str], today: date | None = None
) -> None:
    """Record deployed nodes and the public keys they reported in the store."""
    from orchestrator.service.context import open_fleet

    hosts = node_host_vars(settings)
    with open_fleet(settings) as fleet, fleet.store.transaction():
        known = {n.name: n for n in fleet.store.nodes()}
        for name, key in public_keys.items():
            variables = hosts.get(name, {})
            network = variables.get("wgfleet_tunnel_network")
            if network is None:
                raise ConfigError(
                    str(inventory_path(settings)), f"{name}.wgfleet_tunnel_network", None, "missing"
                )
            previous = known.get(name)
            created = previous.key_created_on if previous and previous.public_key == key else None
            fleet.store.upsert_node(
                Node(
                    name=name,
                    address=str(variables.get("ansible_host", name)),
                    tunnel_network=ipaddress.IPv4Network(str(network)),
                    listen_port=previous.listen_port
                    if previous
                    else int(variables.get("wireguard_port", 51820)),
                    interface=str(variables.get("wireguard_interface", "wg0")),
                    public_key=key,
                    key_created_on=created or today or date.today(),
                )
            )
