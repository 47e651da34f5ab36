"""Deploy the node roles with Ansible, and report host by host."""

from __future__ import annotations

import importlib.metadata
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters import ansible, keyfiles, node_state, ssh
from orchestrator.adapters.input_files import read_text
from orchestrator.core import yaml_input
from orchestrator.core.addressing import TunnelNetworks
from orchestrator.core.converge import (
    NodeRecord,
    Verdict,
    inputs_fingerprint,
    reported_public_keys,
    state_fingerprint,
    verdict,
)
from orchestrator.core.dns_upstream import resolver_extravars
from orchestrator.core.input_limits import INVENTORY_MAX_BYTES
from orchestrator.core.inventory import InventoryShapeError, inventory_hosts
from orchestrator.core.inventory_rules import host_problems, static_peers_problems
from orchestrator.core.models import Node
from orchestrator.core.node_protocol import WIREGUARD_PORT
from orchestrator.core.peers import valid_key
from orchestrator.core.playbook_events import PlayRecap, with_refused
from orchestrator.errors import ConfigError, UsageError
from orchestrator.service import host_keys
from orchestrator.service.context import Fleet, writes
from orchestrator.service.controller_keys import controller_extravars
from orchestrator.settings import Settings

OnUpdate = Callable[[PlayRecap, Mapping[str, Any]], None]


@dataclass(frozen=True)
class DeployResult:
    run: ansible.PlaybookRun
    # Hosts checked against their last full run; the converged ones had no Ansible run.
    verdicts: tuple[Verdict, ...] = ()

    @property
    def verified(self) -> list[str]:
        return sorted(v.node for v in self.verdicts if v.converged)

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
            # Converged hosts Ansible skipped, and why each other checked host got the full run.
            "verified": self.verified,
            "full_run_reasons": {v.node: v.reason for v in self.verdicts if not v.converged},
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
            }
            | {name: {"status": "verified"} for name in self.verified},
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


def _read_hosts(path: Path) -> dict[str, dict[str, Any]]:
    """The inventory's hosts, read within its bound (INVENTORY_MAX_BYTES) as strict YAML
    (aliases allowed, their expansion bounded), every host's name and the variables wgfleet
    relies on checked (core/inventory_rules); the first problem is a ConfigError naming its
    line."""
    text = read_text(path, INVENTORY_MAX_BYTES, "an inventory")
    try:
        root = yaml_input.compose(text, aliases=True)
        hosts = inventory_hosts(yaml_input.construct(root) or {})
    except yaml_input.YamlInputError as exc:
        raise ConfigError(str(path), "(file)", exc.value, exc.problem, line=exc.line) from None
    except InventoryShapeError as exc:
        line = yaml_input.field_lines(root).get(exc.where)
        raise ConfigError(
            str(path), exc.where, exc.value, "expected a mapping", line=line
        ) from None
    problems = [p for name, variables in hosts.items() for p in host_problems(name, variables)]
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        line = _host_line(yaml_input.field_lines(root), first.host, first.variable)
        raise ConfigError(str(path), first.field, first.value, first.problem + more, line=line)
    return hosts


def _host_line(lines: Mapping[str, int], host: str, variable: str) -> int | None:
    """Where ``host`` (or its ``variable``, maybe inherited from a group) is written."""
    wanted = [f"hosts.{host}.{variable}", f"vars.{variable}"] if variable else []
    for suffix in [*wanted, f"hosts.{host}"]:
        for name, line in lines.items():
            if name == suffix or name.endswith("." + suffix):
                return line
    return None


def check_static_peers(extravars: Mapping[str, Any] | None) -> None:
    """The deploy's ``wgfleet_static_peers`` (node -> peers written into its wg-quick file),
    refused whole before anything runs when a field could reach the node's shell line."""
    if not extravars or "wgfleet_static_peers" not in extravars:
        return
    problems = static_peers_problems(extravars["wgfleet_static_peers"])
    if problems:
        first = problems[0]
        raise ConfigError("extra vars", first.field, first.value, first.problem)


def node_host_vars(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each inventory host's variables as a deploy sees them, fleet file settings included."""
    hosts = _read_hosts(inventory_path(settings))
    overlay = fleet_nodes_path(settings)
    if overlay.exists():
        for name, variables in _read_hosts(overlay).items():
            if name in hosts:
                hosts[name] = {**hosts[name], **variables}
    return hosts


def write_fleet_nodes(settings: Settings, node_vars: Mapping[str, Mapping[str, Any]]) -> None:
    """Replace the fleet file's node settings (atomically: a deploy never reads half a file)."""
    path = fleet_nodes_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {"all": {"hosts": {name: dict(v) for name, v in sorted(node_vars.items()) if v}}}
    header = "# Written by `wgfleet apply -f`: node settings from the fleet file. Do not edit.\n"
    text = header + yaml.safe_dump(document, sort_keys=True)
    keyfiles.write_private(path, text.encode("utf-8"))


def root_targets(settings: Settings, limit: str | None) -> list[ssh.Target]:
    """How a deploy (and the audit) reach each inventory host: root, the deploy key, pinned keys.

    ``limit`` is a comma-separated list of host names; a name not in the inventory is an error.
    """
    path = inventory_path(settings)
    hosts = _read_hosts(path)
    wanted = set(limit.split(",")) if limit else None
    if wanted and not wanted <= set(hosts):
        unknown = ", ".join(sorted(wanted - set(hosts)))
        raise UsageError(f"--limit names host(s) not in {path}: {unknown}")
    return [
        _root_target(settings, name, variables)
        for name, variables in sorted(hosts.items())
        if wanted is None or name in wanted
    ]


def _root_target(settings: Settings, name: str, variables: Mapping[str, Any]) -> ssh.Target:
    return ssh.Target(
        name=name,
        address=str(variables.get("ansible_host", name)),
        port=int(variables.get("ansible_port", 22)),
        user="root",
        key_file=settings.ssh.deploy_key,
        known_hosts=settings.ssh.known_hosts,
        timeout=settings.ssh.connect_timeout,
    )


def ansible_work_dir(settings: Settings) -> Path:
    return settings.data_dir / "ansible"


def run_fleet_playbook(
    settings: Settings,
    playbook: str,
    options: ansible.PlaybookOptions | None = None,
    *,
    on_update: OnUpdate | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ansible.PlaybookRun:
    """A playbook over the fleet's inventory, every connection pinned to the fleet's host keys
    and made with the deploy key."""
    with host_keys.pin_store(settings).openssh_file() as known_hosts:
        return ansible.run_playbook(
            project_root=settings.project_root,
            work_dir=ansible_work_dir(settings),
            inventory=inventory_sources(settings),
            playbook=playbook,
            known_hosts=known_hosts,
            private_key=settings.ssh.deploy_key,
            options=options,
            on_update=on_update,
            cancelled=cancelled,
        )


def node_extravars(fleet: Fleet) -> dict[str, Any]:
    """What the roles need from the controller: public halves only, never a private key."""
    settings = fleet.settings
    keyfiles.ensure_ssh_keypair(settings.ssh.collector_key, "wgfleet-collector")
    keyfiles.ensure_ssh_keypair(settings.ssh.push_key, "wgfleet-push")
    return {
        "wgfleet_collector_public_key_file": str(settings.ssh.collector_key) + ".pub",
        "wgfleet_push_public_key_file": str(settings.ssh.push_key) + ".pub",
        "wgfleet_listen_ports": listen_ports(fleet),
        # The other registered controllers' keys, and the revoked ones' to remove.
        **controller_extravars(fleet),
        # The node resolver's upstream (settings dns.*; a fleet file's dns section overrides).
        **resolver_extravars(*resolver_upstream(fleet)),
    }


def resolver_upstream(fleet: Fleet) -> tuple[tuple[str, ...], bool]:
    """The nodes' resolver forwarders and TLS: settings dns.*, or an applied fleet file's."""
    return fleet.settings.dns.forwarders, fleet.settings.dns.forward_tls


def listen_ports(fleet: Fleet) -> dict[str, int]:
    """The port each registered node listens on now (a node key rotation may have moved it)."""
    return {n.name: n.listen_port for n in fleet.store.nodes()}


def tunnel_ipv6(fleet: Fleet, hosts: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each host's IPv6 tunnel side for the roles (site.yml's ``wgfleet_tunnel_ipv6``): its
    /64 from the store, given on its first deploy and kept for the node's life, and its ::1."""
    networks = fleet.store.node_networks6(hosts)
    return {
        name: {"network": str(network), "address": str(TunnelNetworks(_NO_V4, network).own6)}
        for name, network in networks.items()
    }


_NO_V4 = ipaddress.IPv4Network("0.0.0.0/32")  # TunnelNetworks needs one; own6 ignores it

ENDPOINT_CHOICES = ("ipv4", "ipv6")


def endpoint_host(name: str, variables: Mapping[str, Any], source: str) -> str | None:
    """The host a node's client Endpoints name: its IPv4 (``ansible_host``, None) unless
    ``wgfleet_client_endpoint: ipv6`` picks its IPv6 underlay (``wgfleet_underlay_address6``)."""
    chosen = variables.get("wgfleet_client_endpoint", "ipv4")
    if chosen not in ENDPOINT_CHOICES:
        raise ConfigError(source, f"{name}.wgfleet_client_endpoint", chosen, "one of ipv4, ipv6")
    if chosen == "ipv4":
        return None
    address6 = variables.get("wgfleet_underlay_address6")
    try:
        parsed = ipaddress.IPv6Address(str(address6))
    except ValueError:
        raise ConfigError(
            source,
            f"{name}.wgfleet_underlay_address6",
            address6,
            "an IPv6 address is needed for wgfleet_client_endpoint: ipv6",
        ) from None
    return str(parsed)


@writes
def deploy(
    fleet: Fleet,
    *,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    on_update: OnUpdate | None = None,
    cancelled: Callable[[], bool] | None = None,
    extravars: Mapping[str, Any] | None = None,
    full: bool = False,
    today: date | None = None,
) -> DeployResult:
    """Converge the nodes: Ansible on every node not verified unchanged since its last full run.

    ``full`` (or ``deploy.full_every_days: 0``) runs Ansible on every node; so does a ``limit``
    that is an Ansible pattern rather than a list of host names.
    """
    settings = fleet.settings
    fleet.record(f"deploy {limit or 'all nodes'}" + (" (check)" if check else ""))
    today = today or date.today()
    # Everything a deploy reads from outside is checked before it creates anything (the
    # controller's keys, the store): the inventory, the fleet file's node settings, the
    # static peers.
    check_static_peers(extravars)
    inputs = DeployInputs.read(settings)
    controller_vars = node_extravars(fleet)
    controller_vars["wgfleet_tunnel_ipv6"] = tunnel_ipv6(fleet, sorted(inputs.host_vars))
    all_extravars = {**controller_vars, **dict(extravars or {})}
    hosts = _named_hosts(inputs.host_vars, limit)
    # Every host the run would reach shows its host key first: one that is not pinned, or
    # differs from its pin, never gets an Ansible connection (nor a state probe).
    candidates = hosts if hosts is not None else _pattern_hosts(settings, str(limit))
    refused = {
        name: str(error).removeprefix(f"{name}: ")
        for name, error in host_keys.refused_nodes(
            _root_target(settings, name, inputs.host_vars[name])
            for name in candidates
            if name in inputs.host_vars
        ).items()
    }
    if hosts is not None:
        hosts = [name for name in hosts if name not in refused]
    verdicts: tuple[Verdict, ...] = ()
    if hosts and not full and settings.deploy.full_every_days > 0:
        verdicts = tuple(verify_converged(fleet, inputs, hosts, all_extravars, today))
    run_limit = limit
    nothing_to_run = (
        not hosts
        if hosts is not None
        else bool(candidates) and not (set(candidates) - set(refused))
    )
    if verdicts:
        run_limit = ",".join(sorted(v.node for v in verdicts if not v.converged)) or None
        nothing_to_run = run_limit is None
    if refused and not nothing_to_run:
        run_limit = ",".join([run_limit or "all", *(f"!{name}" for name in sorted(refused))])
    public_keys: dict[str, str] = {}

    def watch(recap: PlayRecap, event: Mapping[str, Any]) -> None:
        data = event.get("event_data") or {}
        result = data.get("res") or {}
        if event.get("event") == "runner_on_ok" and isinstance(result, Mapping):
            key = result.get("wireguard_public_key")
            if isinstance(key, str) and valid_key(key):
                public_keys[str(data.get("host"))] = key
        if on_update is not None:
            on_update(with_refused(recap, refused), event)

    if on_update is not None:
        # Shown as Ansible shows a host it cannot reach, before the run starts.
        shown = with_refused(PlayRecap(), refused)
        for name in sorted(refused):
            on_update(shown, {"event": "runner_on_unreachable", "event_data": {"host": name}})
    if nothing_to_run:
        run = ansible.PlaybookRun("site.yml", "successful", 0, PlayRecap(finished=True), check)
    else:
        options = ansible.PlaybookOptions(run_limit, check, diff, all_extravars)
        run = run_fleet_playbook(
            settings, "site.yml", options, on_update=watch, cancelled=cancelled
        )
    registered_ports: dict[str, int] = {}
    if not check and public_keys:
        registered_ports = register_nodes(fleet, public_keys, host_vars=inputs.host_vars)
    if not check and run.status in ("successful", "failed"):
        # A first deploy ran with no listen port in the store (the roles' default) and has just
        # registered that same port, which the next deploy passes: record with it.
        ports = {**controller_vars["wgfleet_listen_ports"], **registered_ports}
        recorded = {**controller_vars, "wgfleet_listen_ports": ports, **dict(extravars or {})}
        # Refused hosts were not touched: their records stay for the next deploy to check.
        record_full_runs(fleet, inputs, run.recap, recorded, today)
    if refused:
        status = "failed" if run.status == "successful" else run.status
        run = replace(run, status=status, rc=run.rc or 1, recap=with_refused(run.recap, refused))
    return DeployResult(run, verdicts)


def _pattern_hosts(settings: Settings, pattern: str) -> list[str]:
    """The hosts an Ansible pattern ``--limit`` selects; a pattern Ansible cannot read selects
    none here (Ansible's own run reports it)."""
    try:
        return ansible.hosts_matching(inventory_sources(settings), pattern)
    except Exception:  # Ansible's errors are many; its own run names them
        return []


def _named_hosts(known: Mapping[str, Any], limit: str | None) -> list[str] | None:
    """The hosts ``limit`` names (all without one), or None for an Ansible pattern."""
    if limit is None:
        return sorted(known)
    names = [name.strip() for name in limit.split(",") if name.strip()]
    return sorted(set(names)) if names and set(names) <= set(known) else None


def records_path(settings: Settings) -> Path:
    return settings.data_dir / "deploy-state.json"


@dataclass(frozen=True)
class DeployInputs:
    """What a deploy renders from, read once per deploy: the inventory hosts' variables and the
    files of the roles, the playbook and the inventory's var directories."""

    host_vars: dict[str, dict[str, Any]]
    files: dict[str, bytes]

    @classmethod
    def read(cls, settings: Settings) -> DeployInputs:
        root = settings.project_root
        files = {"ansible-core": importlib.metadata.version("ansible-core").encode()}
        candidates = [root / "playbooks" / "site.yml", *sorted((root / "roles").rglob("*"))]
        inventory_dir = inventory_path(settings).parent
        for var_dir in ("group_vars", "host_vars"):
            candidates += sorted((inventory_dir / var_dir).rglob("*"))
        for path in candidates:
            if path.is_file() and "__pycache__" not in path.parts:
                name = str(path.relative_to(root) if path.is_relative_to(root) else path)
                files[name] = path.read_bytes()
        return cls(node_host_vars(settings), files)

    def files_with(self, extravars: Mapping[str, Any]) -> dict[str, bytes]:
        """The files plus every controller file an extra var names (the public keys the roles
        install)."""
        files = dict(self.files)
        for name, value in sorted(extravars.items()):
            if name.endswith("_file") and isinstance(value, str) and Path(value).is_file():
                files[f"extravar:{name}"] = Path(value).read_bytes()
        return files


def _registered_keys(fleet: Fleet) -> dict[str, str]:
    return {n.name: n.public_key for n in fleet.store.nodes() if n.public_key}


def verify_converged(
    fleet: Fleet,
    inputs: DeployInputs,
    hosts: list[str],
    extravars: Mapping[str, Any],
    today: date,
) -> list[Verdict]:
    """Each host's verdict: does its last full run's record still match, inputs and state?"""
    settings = fleet.settings
    records = node_state.load_records(records_path(settings))
    host_vars = inputs.host_vars
    files = inputs.files_with(extravars)
    recorded = [name for name in hosts if name in records]
    targets = [t for t in root_targets(settings, ",".join(recorded)) if recorded]
    states = node_state.read_states(targets)
    keys = _registered_keys(fleet)
    verdicts = []
    for name in hosts:
        answer = states.get(name)
        state = None
        key_matches = False
        if isinstance(answer, str):
            try:
                state = state_fingerprint(answer)
            except ValueError:
                state = None
            interface = str(host_vars[name].get("wireguard_interface", "wg0"))
            key_matches = reported_public_keys(answer).get(interface) == keys.get(name)
        verdicts.append(
            verdict(
                name,
                records.get(name),
                inputs_fingerprint(name, host_vars[name], extravars, files),
                state,
                today=today,
                full_every_days=settings.deploy.full_every_days,
                key_matches=key_matches,
            )
        )
    return verdicts


def record_full_runs(
    fleet: Fleet,
    inputs: DeployInputs,
    recap: PlayRecap,
    extravars: Mapping[str, Any],
    today: date,
) -> None:
    """Fingerprint every host the run finished without a failure, as the fast path's baseline.

    A host that failed, or whose state cannot be read now, loses its record: its next deploy
    is a full run.
    """
    settings = fleet.settings
    path = records_path(settings)
    records = node_state.load_records(path)
    done = [n for n, h in recap.hosts.items() if h.status in ("ok", "changed")]
    failed = [n for n, h in recap.hosts.items() if h.status not in ("ok", "changed")]
    if not done and not failed:
        return
    host_vars = inputs.host_vars
    files = inputs.files_with(extravars)
    named = [n for n in done if n in host_vars]
    states = node_state.read_states(root_targets(settings, ",".join(named))) if named else {}
    for name in failed:
        records.pop(name, None)
    for name in named:
        answer = states.get(name)
        try:
            state = state_fingerprint(answer) if isinstance(answer, str) else None
        except ValueError:
            state = None
        if state is None:
            records.pop(name, None)
            continue
        records[name] = NodeRecord(
            inputs=inputs_fingerprint(name, host_vars[name], extravars, files),
            state=state,
            full_run_on=today,
        )
    node_state.save_records(path, records)


@writes
def register_nodes(
    fleet: Fleet,
    public_keys: Mapping[str, str],
    today: date | None = None,
    *,
    host_vars: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, int]:
    """Record deployed nodes and the public keys they reported in the store; return the listen
    port each now has there."""
    settings = fleet.settings
    hosts = node_host_vars(settings) if host_vars is None else host_vars
    ports: dict[str, int] = {}
    endpoints: dict[str, str | None] = {}
    with fleet.store.transaction():
        known = {n.name: n for n in fleet.store.nodes()}
        for name, key in public_keys.items():
            variables = hosts.get(name, {})
            network = variables.get("wgfleet_tunnel_network")
            if network is None:
                raise ConfigError(
                    str(inventory_path(settings)), f"{name}.wgfleet_tunnel_network", None, "missing"
                )
            previous = known.get(name)
            endpoints[name] = endpoint_host(name, variables, str(inventory_path(settings)))
            created = previous.key_created_on if previous and previous.public_key == key else None
            default_port = int(variables.get("wireguard_port", WIREGUARD_PORT))
            ports[name] = previous.listen_port if previous else default_port
            fleet.store.upsert_node(
                Node(
                    name=name,
                    address=str(variables.get("ansible_host", name)),
                    tunnel_network=ipaddress.IPv4Network(str(network)),
                    listen_port=ports[name],
                    interface=str(variables.get("wireguard_interface", "wg0")),
                    public_key=key,
                    key_created_on=created or today or date.today(),
                )
            )
        fleet.store.set_endpoint_hosts(endpoints)
    return ports
