"""Use cases of the lab fleet: bring it up, report on it, take it down, stop/start one node."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.adapters import keyfiles, ssh
from orchestrator.adapters.input_files import read_text
from orchestrator.adapters.lab import clients as lab_clients
from orchestrator.adapters.lab import internet as lab_internet
from orchestrator.adapters.lab import machines, network, rootfs, wgquick_client
from orchestrator.adapters.lab.state import LabState, NodeRecord, lab_lock
from orchestrator.adapters.proc import require_root, require_tools
from orchestrator.core.input_limits import WG_QUICK_MAX_BYTES
from orchestrator.core.inventory import (
    HostKey,
    InventoryHost,
    key_fingerprint,
    parse_public_key,
    render_inventory,
)
from orchestrator.core.lab_layout import (
    CLIENT_DEFAULT_METRIC,
    MACHINE_PREFIX,
    LabClient,
    LabLayout,
    LabNode,
    client_capacity,
    lab_internet_link,
    machine_prefix,
    name_prefix,
    netns_prefix,
    node_capacity,
    plan_layout,
)
from orchestrator.core.wgquick import WgQuickError, parse_wg_quick
from orchestrator.errors import ConfigError, EnvironmentProblem, LabError, NodeError, UsageError
from orchestrator.service.context import open_fleet
from orchestrator.service.host_keys import pin_store
from orchestrator.settings import Settings

Progress = Callable[[str], None]
INVENTORY_GROUP = "nodes"
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_NEEDED = 8192
# Lab nodes on the machine past which the kernel's default inotify limit runs out.
INOTIFY_DEFAULT_ENOUGH_FOR = 12
# The limit before a lab raised it; shared by every lab, like the /run/netns marker.
INOTIFY_MARKER = Path("/run/wgfleet-lab-inotify-before")
BOOT_TIMEOUT = 180.0
LAB_TOOLS = ("ip", "systemd-nspawn", "unshare", "mount", "umount", "wireguard-go", "wg")


def _quiet(_message: str) -> None:
    pass


@dataclass(frozen=True)
class NodeStatus:
    name: str
    address: str
    running: bool
    pid: int | None
    system_state: str  # `systemctl is-system-running`, or why it could not be asked
    host_key_fingerprint: str | None


@dataclass(frozen=True)
class ClientStatus:
    name: str
    address: str
    namespace: bool
    tunnel_pid: int | None


@dataclass(frozen=True)
class LabStatus:
    lab: str
    up: bool
    subnet: str
    bridge: str
    inventory: str
    known_hosts: str
    nodes: tuple[NodeStatus, ...] = ()
    clients: tuple[ClientStatus, ...] = ()
    messages: tuple[str, ...] = field(default=())
    # The lab internet: namespace, addresses, zone and which of its services run.
    internet: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.up and all(
            n.running and n.system_state in ("running", "degraded") for n in self.nodes
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def inventory_file(settings: Settings) -> Path:
    return settings.inventory / "hosts.yml"


def _layout(settings: Settings, state: LabState) -> LabLayout:
    return plan_layout(settings.lab.name, settings.lab.subnet, state.nodes, state.clients)


def node_target(settings: Settings, node: LabNode, user: str = "root") -> ssh.Target:
    return ssh.Target(
        name=node.name,
        address=str(node.underlay),
        user=user,
        key_file=settings.ssh.deploy_key,
        known_hosts=settings.ssh.known_hosts,
        timeout=settings.ssh.connect_timeout,
    )


def _check_environment() -> None:
    require_root("the lab")
    require_tools(*LAB_TOOLS)
    if not Path("/dev/net/tun").exists():
        raise EnvironmentProblem("/dev/net/tun is missing: wireguard-go cannot create interfaces")
    if not machines.CGROUP_ROOTS[0].is_dir():
        raise EnvironmentProblem(f"no cgroup2 tree at {machines.CGROUP_ROOTS[0]}")


@contextlib.contextmanager
def _pins_session(settings: Settings) -> Iterator[None]:
    """Where the lab's new pins become the fleet's. On PostgreSQL the store holds the fleet's
    copy of the pins file (service/shared_files.py) and every session first brings the local
    file to it: pins written outside a session would be put back to the store's older ones by
    the next. Written inside a writing session (the fleet lock held), they land after its pull
    and go to the store at its end. On SQLite the local file is the only copy."""
    if not settings.store_url.startswith(("postgresql://", "postgres://")):
        yield
        return
    with open_fleet(settings, write=True, operation="lab up"):
        yield


def _write_inventory(settings: Settings, layout: LabLayout, state: LabState) -> None:
    settings.inventory.mkdir(parents=True, exist_ok=True)
    keys = []
    hosts = []
    for node in layout.nodes:
        record = state.machines.get(node.name)
        if record is None or record.host_key is None:
            continue
        key_type, key_b64 = parse_public_key(record.host_key)
        keys.append(HostKey((node.name, str(node.underlay)), key_type, key_b64))
        hosts.append(
            InventoryHost(
                name=node.name,
                address=node.underlay,
                variables={
                    "wgfleet_tunnel_network": str(node.tunnel_network),
                    "wgfleet_tunnel_address": str(node.tunnel_address),
                    "wgfleet_underlay_address6": str(node.underlay6),
                },
            )
        )
    # The lab made every node's host key itself: its pins are exactly those keys.
    pin_store(settings).replace_all(keys)
    inventory = render_inventory(
        INVENTORY_GROUP,
        hosts,
        private_key=str(settings.ssh.deploy_key),
        known_hosts=str(settings.ssh.known_hosts),
        group_vars={"wgfleet_lab": True, "wireguard_implementation": "userspace"},
    )
    header = f"# Written by `wgfleet lab up` for lab {layout.lab!r}; regenerated on every run.\n"
    keyfiles.write_private(
        inventory_file(settings),
        (header + yaml.safe_dump(inventory, sort_keys=False)).encode("utf-8"),
        mode=0o644,
    )


def _wait_for_port(address: str, port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _system_state(settings: Settings, node: LabNode, wait: bool, deadline: float) -> str:
    """Ask systemd on the node how it is; waits for boot to finish when ``wait``."""
    if wait and not _wait_for_port(str(node.underlay), 22, deadline):
        return "sshd not answering"
    argv = ["systemctl", "is-system-running", *(["--wait"] if wait else [])]
    try:
        result = ssh.run_on(
            node_target(settings, node),
            argv,
            check=False,
            timeout=max(5.0, deadline - time.monotonic()),
        )
    except NodeError as exc:
        return f"unreachable: {str(exc).removeprefix(f'{node.name}: ')}"
    return result.stdout.strip() or f"exit {result.status}"


def _start_node(settings: Settings, state: LabState, node: LabNode, public_key: str) -> None:
    paths = machines.node_paths(settings.lab.state_dir, node)
    network.attach_netns(
        node.netns,
        node.veth_host,
        _layout(settings, state).bridge,
        node.underlay,
        settings.lab.subnet.prefixlen,
        node.underlay6,
    )
    machines.mount_overlay(Path(state.rootfs), paths)
    host_key = machines.prepare_identity(paths, node, public_key)
    pid = machines.start_machine(node, paths)
    state.machines[node.name] = NodeRecord(pid=pid, host_key=host_key)
    state.save(settings.lab.state_dir)


def _running_pid(state: LabState, node: LabNode) -> int | None:
    record = state.machines.get(node.name)
    if record and record.pid and machines.nspawn_machine(record.pid) == node.machine:
        return record.pid
    return None


def _raise_inotify_limit(nodes: int) -> None:
    """Every lab node's systemd and wireguard-go hold inotify instances, all as root, and the
    kernel's limit is per user: the default (128) runs out at about 18 nodes counted over every
    lab on the machine. Past it a node's units fail and wireguard-go exits as it starts (it
    watches its control socket), which showed as `wg setconf: Protocol not supported` in a lab
    whose own 3 nodes were far below any limit, beside other labs. So the count is the
    machine's: the nodes of every running lab plus these."""
    if not INOTIFY_INSTANCES.exists():
        return
    running = len(machines.find_machines(MACHINE_PREFIX))
    current = int(INOTIFY_INSTANCES.read_text().strip())
    if running + nodes <= INOTIFY_DEFAULT_ENOUGH_FOR or current >= INOTIFY_NEEDED:
        return
    if not INOTIFY_MARKER.exists():
        INOTIFY_MARKER.write_text(f"{current}\n", encoding="ascii")
    INOTIFY_INSTANCES.write_text(f"{INOTIFY_NEEDED}\n")


def _restore_inotify_limit(state: LabState | None) -> None:
    """The last lab down puts back the limit the first one raised (a lab from before the
    shared marker kept it in its own state)."""
    if machines.find_machines(MACHINE_PREFIX):
        return
    before = state.inotify_instances_before if state else None
    if INOTIFY_MARKER.exists():
        before = int(INOTIFY_MARKER.read_text(encoding="ascii").strip())
    if before is not None and INOTIFY_INSTANCES.exists():
        INOTIFY_INSTANCES.write_text(f"{before}\n")
    INOTIFY_MARKER.unlink(missing_ok=True)


def _wait_ready(settings: Settings, nodes: list[LabNode], progress: Progress) -> list[str]:
    """Wait until every node's boot finished; return one problem line per node that did not."""
    deadline = time.monotonic() + BOOT_TIMEOUT
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(nodes)))) as pool:
        states = list(pool.map(lambda n: _system_state(settings, n, True, deadline), nodes))
    problems = []
    for node, state in zip(nodes, states, strict=True):
        if state not in ("running", "degraded"):
            problems.append(f"{node.name}: {state}")
        else:
            progress(f"{node.name} {node.underlay} {state}")
    return problems


def lab_up(settings: Settings, nodes: int, clients: int, progress: Progress = _quiet) -> LabStatus:
    """Build the lab fleet (or finish building it); idempotent for the same size."""
    _check_environment()
    subnet = settings.lab.subnet
    if not 1 <= nodes <= node_capacity(subnet):
        raise UsageError(
            f"--nodes {nodes}: must be 1..{node_capacity(subnet)} for lab subnet {subnet}"
        )
    if not 0 <= clients <= client_capacity(subnet):
        raise UsageError(f"--clients {clients}: must be 0..{client_capacity(subnet)} for {subnet}")
    state_dir = settings.lab.state_dir
    with lab_lock(state_dir):
        state = LabState.load(state_dir)
        if state is not None and (state.nodes, state.clients, state.subnet) != (
            nodes,
            clients,
            str(subnet),
        ):
            raise UsageError(
                f"lab {settings.lab.name!r} is already up with {state.nodes} nodes and "
                f"{state.clients} clients on {state.subnet}; "
                "run `wgfleet lab down` first to change it"
            )
        if state is None:
            state = LabState(
                lab=settings.lab.name,
                subnet=str(subnet),
                nodes=nodes,
                clients=clients,
            )
            state.save(state_dir)
        layout = _layout(settings, state)
        pending = [node for node in layout.nodes if _running_pid(state, node) is None]
        if (
            not pending
            and all(network.netns_exists(c.netns) for c in layout.clients)
            and lab_internet.running(state.internet, _internet_dir(settings), layout.internet)
        ):
            status = lab_status(settings)
            return dataclasses.replace(status, messages=("lab is already up; nothing to do",))

        public_key = keyfiles.ensure_ssh_keypair(settings.ssh.deploy_key, "wgfleet-deploy")
        keyfiles.ensure_ssh_keypair(settings.ssh.collector_key, "wgfleet-collector")
        keyfiles.ensure_ssh_keypair(settings.ssh.push_key, "wgfleet-push")
        state.rootfs = str(build_rootfs(settings, progress))
        _raise_inotify_limit(nodes)
        state.save(state_dir)
        network.note_netns_dir_state()
        network.ensure_bridge(
            layout.bridge, layout.bridge_address, subnet.prefixlen, layout.bridge_address6
        )
        for client in layout.clients:
            network.attach_netns(
                client.netns,
                client.veth_host,
                layout.bridge,
                client.underlay,
                subnet.prefixlen,
                client.underlay6,
                routes=_client_routes(layout),
            )
        _start_internet(settings, state, layout)
        progress(f"booting {len(pending)} node(s)")
        for node in pending:
            _start_node(settings, state, node, public_key)
        with _pins_session(settings):
            _write_inventory(settings, layout, state)
        problems = _wait_ready(settings, pending, progress)
        lab_internet.wait_ready(layout.internet, _internet_dir(settings), state.internet)
    if problems:
        raise LabError("nodes did not boot: " + "; ".join(problems))
    return lab_status(settings)


def _client_routes(layout: LabLayout) -> network.ClientRoutes:
    return network.ClientRoutes(
        onlink=(*layout.client_routes4, *layout.client_routes6),
        gateways=layout.internet.addresses,
        metric=CLIENT_DEFAULT_METRIC,
    )


def _internet_dir(settings: Settings) -> Path:
    """The lab internet's files (nsd's config, zone, pid file and log): the lab's own."""
    return settings.lab.state_dir / "inet"


def _start_internet(settings: Settings, state: LabState, layout: LabLayout) -> None:
    # Recorded before and after: a crash while starting leaves the PIDs it got, and the
    # namespace sweep of `lab down` catches the rest by name.
    try:
        state.internet = lab_internet.start(
            layout.internet,
            layout.bridge,
            settings.lab.subnet.prefixlen,
            _internet_dir(settings),
            state.internet,
        )
    finally:
        state.save(settings.lab.state_dir)


def build_rootfs(settings: Settings, progress: Progress = _quiet) -> Path:
    """Build (or find) the cached node rootfs, so a later `lab up` boots in seconds."""
    require_root("building the lab rootfs")
    return rootfs.ensure_rootfs(
        settings.lab.rootfs_cache, settings.lab.suite, settings.lab.mirror, progress
    )


def lab_status(settings: Settings, probe: bool = True) -> LabStatus:
    state = LabState.load(settings.lab.state_dir)
    inventory, known_hosts = str(inventory_file(settings)), str(settings.ssh.known_hosts)
    if state is None:
        layout = plan_layout(settings.lab.name, settings.lab.subnet, 0, 0)
        return LabStatus(
            settings.lab.name,
            False,
            str(settings.lab.subnet),
            layout.bridge,
            inventory,
            known_hosts,
        )
    layout = _layout(settings, state)
    deadline = time.monotonic() + 30

    def node_status(node: LabNode) -> NodeStatus:
        pid = _running_pid(state, node)
        record = state.machines.get(node.name)
        fingerprint = None
        if record and record.host_key:
            fingerprint = key_fingerprint(parse_public_key(record.host_key)[1])
        if pid is None:
            system = "stopped"
        elif probe:
            system = _system_state(settings, node, False, deadline)
        else:
            system = "not probed"
        return NodeStatus(node.name, str(node.underlay), pid is not None, pid, system, fingerprint)

    with ThreadPoolExecutor(max_workers=min(32, max(1, len(layout.nodes)))) as pool:
        nodes = tuple(pool.map(node_status, layout.nodes))
    clients = tuple(
        ClientStatus(
            c.name,
            str(c.underlay),
            network.netns_exists(c.netns),
            lab_clients.tunnel_pid(c, _tunnel_pid_file(settings, c)),
        )
        for c in layout.clients
    )
    internet = layout.internet
    return LabStatus(
        settings.lab.name,
        True,
        state.subnet,
        layout.bridge,
        inventory,
        known_hosts,
        nodes,
        clients,
        internet={
            "namespace": internet.netns,
            "addresses": [str(address) for address in internet.addresses],
            "zone": internet.zone,
            "echo_port": internet.echo_port,
            "running": lab_internet.running(
                state.internet, _internet_dir(settings), layout.internet
            ),
        },
    )


def _tunnel_pid_file(settings: Settings, client: LabClient) -> Path:
    return settings.lab.state_dir / "clients" / f"{client.name}.pid"


def lab_down(settings: Settings, progress: Progress = _quiet) -> list[str]:
    """Remove everything the lab made, found by record and by name; safe to repeat."""
    require_root("the lab")
    lab = settings.lab.name
    state_dir = settings.lab.state_dir
    removed: list[str] = []
    with lab_lock(state_dir):
        state = LabState.load(state_dir)
        layout = _layout(settings, state) if state else plan_layout(lab, settings.lab.subnet, 0, 0)
        for client in layout.clients:
            lab_clients.tunnel_down(client, _tunnel_pid_file(settings, client))
            wgquick_client.down(client, _wg_quick_dir(settings, client))
        if state is not None:
            removed += lab_internet.stop(state.internet, _internet_dir(settings), layout.internet)
        running = machines.find_machines(machine_prefix(lab))
        if running:
            progress(f"stopping {len(running)} node(s)")
        with ThreadPoolExecutor(max_workers=min(32, max(1, len(running)))) as pool:
            list(pool.map(lambda item: machines.stop_machine(item[0], item[1]), running.items()))
        removed += [f"process {pid} ({machine})" for machine, pid in running.items()]
        for machine in {*running, *(n.machine for n in layout.nodes)}:
            machines.remove_cgroups(machine)
        nodes_dir = state_dir / "nodes"
        if nodes_dir.is_dir():
            for node_dir in sorted(nodes_dir.iterdir()):
                machines.unmount_overlay(machines.NodePaths(node_dir))
        prefix = netns_prefix(lab)
        for namespace in network.netns_list():
            if not namespace.startswith(prefix):
                continue
            for pid in network.netns_pids(namespace):
                _kill(pid)
            host_link = _host_link_for(lab, namespace[len(prefix) :])
            network.delete_netns(namespace, host_link)
            removed.append(f"namespace {namespace}")
        network.delete_link(layout.bridge)
        # By name, also after a crash that lost the state: what wg-quick tunnels left on the
        # host once their namespaces are gone (resolv.conf stand-ins, UAPI sockets).
        removed += wgquick_client.sweep(lab)
        network.release_netns_dir()
        _restore_inotify_limit(state)
        if nodes_dir.is_dir():
            shutil.rmtree(nodes_dir, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)
        for generated in (inventory_file(settings), settings.ssh.known_hosts):
            generated.unlink(missing_ok=True)
    return removed


def _host_link_for(lab: str, suffix: str) -> str:
    if suffix.startswith("node"):
        return f"{name_prefix(lab)}n{suffix[4:]}"
    if suffix.startswith("client"):
        return f"{name_prefix(lab)}c{suffix[6:]}"
    if suffix == "inet":
        return lab_internet_link(lab)
    return ""


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _existing(settings: Settings) -> tuple[LabState, LabLayout]:
    state = LabState.load(settings.lab.state_dir)
    if state is None:
        raise UsageError(f"lab {settings.lab.name!r} is not up: run `wgfleet lab up` first")
    return state, _layout(settings, state)


def _find_node(layout: LabLayout, name: str) -> LabNode:
    try:
        return layout.node(name)
    except KeyError:
        known = ", ".join(n.name for n in layout.nodes)
        raise UsageError(f"no lab node {name!r} (nodes: {known})") from None


def _find_client(layout: LabLayout, name: str) -> LabClient:
    try:
        return layout.client(name)
    except KeyError:
        known = ", ".join(c.name for c in layout.clients) or "none"
        raise UsageError(f"no lab client {name!r} (clients: {known})") from None


def node_stop(settings: Settings, name: str) -> None:
    """Power a node off, as a crash or outage would look from the controller; its disk stays."""
    require_root("the lab")
    with lab_lock(settings.lab.state_dir):
        state, layout = _existing(settings)
        node = _find_node(layout, name)
        machines.stop_machine(node.machine, _running_pid(state, node))
        state.machines[node.name].pid = None
        state.save(settings.lab.state_dir)


def node_start(settings: Settings, name: str, progress: Progress = _quiet) -> None:
    """Boot a stopped node again from its own disk (same host key, same state)."""
    _check_environment()
    with lab_lock(settings.lab.state_dir):
        state, layout = _existing(settings)
        node = _find_node(layout, name)
        if _running_pid(state, node) is not None:
            return
        public_key = keyfiles.ensure_ssh_keypair(settings.ssh.deploy_key, "wgfleet-deploy")
        machines.remove_cgroups(node.machine)
        _start_node(settings, state, node, public_key)
        problems = _wait_ready(settings, [node], progress)
    if problems:
        raise LabError("node did not boot: " + "; ".join(problems))


def read_client_config(path: str | os.PathLike[str]) -> str:
    """A user's wg-quick file, read within WG_QUICK_MAX_BYTES and parsed strictly: its text,
    or a ConfigError (exit 2) naming the file and the line."""
    text = read_text(path, WG_QUICK_MAX_BYTES, "a wg-quick file")
    try:
        parse_wg_quick(text)
    except WgQuickError as exc:
        message = str(exc).removeprefix(f"line {exc.line}: ")
        raise ConfigError(str(path), "(file)", "", message, line=exc.line) from None
    return text


def tunnel_up(settings: Settings, client_name: str, config_text: str) -> int:
    """Bring up a lab client's WireGuard tunnel from a wg-quick config; return its PID."""
    _check_environment()
    _state, layout = _existing(settings)
    client = _find_client(layout, client_name)
    return lab_clients.tunnel_up(client, config_text, _tunnel_pid_file(settings, client))


def tunnel_down(settings: Settings, client_name: str) -> None:
    require_root("the lab")
    _state, layout = _existing(settings)
    client = _find_client(layout, client_name)
    lab_clients.tunnel_down(client, _tunnel_pid_file(settings, client))


def _wg_quick_dir(settings: Settings, client: LabClient) -> Path:
    return settings.lab.state_dir / "clients" / f"{client.name}.wg-quick"


def wg_quick_up(settings: Settings, client_name: str, config_text: str) -> int | None:
    """Bring a lab client's tunnel up with the real `wg-quick up` from a configuration exactly
    as handed out (DNS lines included); return the PID of the wireguard-go it started.
    A file with hook commands is refused before anything starts (see _refuse_wg_quick_hooks)."""
    _refuse_wg_quick_hooks(config_text)
    _check_environment()
    require_tools("wg-quick", "nft")
    _state, layout = _existing(settings)
    client = _find_client(layout, client_name)
    return wgquick_client.up(client, config_text, _wg_quick_dir(settings, client))


# wg-quick runs these as root shell commands on this machine (PreUp..PostDown) or writes live
# state, endpoints included, back to the file (SaveConfig): no handed-out file has them.
WG_QUICK_HOOKS = ("preup", "postup", "predown", "postdown", "saveconfig")


def _refuse_wg_quick_hooks(config_text: str) -> None:
    try:
        config = parse_wg_quick(config_text)
    except WgQuickError as exc:
        raise UsageError(f"wg-quick configuration: {exc}; nothing was started") from None
    hooks = sorted(
        {name for name, _value, _line in config.interface.values if name.lower() in WG_QUICK_HOOKS}
    )
    if hooks:
        raise UsageError(
            f"wg-quick configuration: {', '.join(hooks)}: the lab runs no hook commands "
            "(wg-quick would run them as root on this machine); nothing was started"
        )


def wg_quick_down(settings: Settings, client_name: str) -> list[str]:
    """`wg-quick down`, then whatever it left (process, interface, nftables table, rules,
    resolv.conf stand-in); safe to repeat. Returns what had to be removed by hand."""
    require_root("the lab")
    _state, layout = _existing(settings)
    client = _find_client(layout, client_name)
    return wgquick_client.down(client, _wg_quick_dir(settings, client))


def node_exec(settings: Settings, name: str, argv: list[str]) -> ssh.CommandResult:
    """Run a command on a lab node over pinned SSH as root."""
    _state, layout = _existing(settings)
    return ssh.run_on(node_target(settings, _find_node(layout, name)), argv, check=False)
