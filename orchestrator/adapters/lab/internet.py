"""The lab's simulated internet: a namespace on the lab bridge running an echo service and an
authoritative nsd for the lab zone, both processes we start (``ip netns exec`` execs them, so
the PID we get is theirs) and track by PID in the lab's state.

Everything nsd writes (config, zone, pid file, its log) lives in the lab's own directory, and
it listens only on the namespace's two addresses. Nodes and clients reach it on-link.
"""

from __future__ import annotations

import ipaddress
import secrets
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.adapters.lab import network
from orchestrator.adapters.private_files import write_private
from orchestrator.adapters.proc import cmdline, pid_alive, stop_pid
from orchestrator.core.lab_dns import render_nsd_conf, render_zone, zone_file_name
from orchestrator.core.lab_layout import LabInternet
from orchestrator.errors import LabError

ECHO = "echo"
NSD = "nsd"
START_TIMEOUT = 20.0
DNS_TYPE_SOA = 6


def _in_netns(internet: LabInternet, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", internet.netns, *argv]


def _is_ours(pid: int, marker: str) -> bool:
    """Whether ``pid`` still runs the service we started (a reused PID has another cmdline)."""
    return pid_alive(pid) and marker.encode() in cmdline(pid)


def _marker(service: str, directory: Path, internet: LabInternet) -> str:
    """An argument only this lab's instance of the service has."""
    return str(directory / "nsd.conf") if service == NSD else internet.netns


def running(pids: dict[str, int], directory: Path, internet: LabInternet) -> bool:
    return all(
        service in pids and _is_ours(pids[service], _marker(service, directory, internet))
        for service in (ECHO, NSD)
    )


def _start_echo(internet: LabInternet) -> int:
    addresses = [str(address) for address in internet.addresses]
    process = subprocess.Popen(
        _in_netns(
            internet,
            sys.executable,
            "-m",
            "orchestrator.adapters.lab.echo",
            "serve",
            internet.netns,
            str(internet.echo_port),
            *addresses,
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    # The service prints one line once every socket is bound, then closes its stdout.
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else b""
    process.stdout.close()
    if line.strip() != b"ready":
        stop_pid(process.pid)
        detail = process.stderr.read().decode(errors="replace").strip().splitlines()
        raise LabError(f"lab internet echo service did not start: {detail[-1:] or 'no output'}")
    process.stderr.close()
    return process.pid


def _dns_probe(address: ipaddress.IPv4Address | ipaddress.IPv6Address, zone: str) -> bool:
    """One SOA query for the zone from the host (on-link over the bridge); True on an answer."""
    query_id = secrets.randbits(16)
    question = b"".join(
        bytes([len(label)]) + label.encode("ascii") for label in zone.rstrip(".").split(".")
    )
    packet = struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0) + question + b"\0"
    packet += struct.pack("!HH", DNS_TYPE_SOA, 1)
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.sendto(packet, (str(address), 53))
            answer = sock.recv(4096)
        except OSError:
            return False
    return len(answer) >= 2 and struct.unpack("!H", answer[:2])[0] == query_id


def _launch_nsd(internet: LabInternet, directory: Path) -> int:
    write_private(directory / "nsd.conf", render_nsd_conf(internet, directory).encode("ascii"))
    write_private(directory / zone_file_name(internet), render_zone(internet).encode("ascii"))
    for stale in ("nsd.pid", "zone.list", "xfrd.state"):
        (directory / stale).unlink(missing_ok=True)
    process = subprocess.Popen(
        _in_netns(internet, "nsd", "-d", "-c", str(directory / "nsd.conf")),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process.pid


def wait_ready(internet: LabInternet, directory: Path, pids: dict[str, int]) -> None:
    """Wait until nsd answers on both addresses (it loads the zone, then serves; ~0.5 s, which
    `lab up` spends booting the nodes meanwhile)."""
    deadline = time.monotonic() + START_TIMEOUT
    pending: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = list(internet.addresses)
    pid = pids[NSD]
    while (
        pending and time.monotonic() < deadline and _is_ours(pid, _marker(NSD, directory, internet))
    ):
        if _dns_probe(pending[0], internet.zone):
            pending.pop(0)
        else:
            time.sleep(0.05)  # not listening yet: the port is refused at once
    if pending:
        log = directory / "nsd.log"
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        raise LabError(f"lab internet nsd does not answer on {pending[0]}: {lines[-1:]}")


def start(
    internet: LabInternet,
    bridge: str,
    prefixlen: int,
    directory: Path,
    pids: dict[str, int],
) -> dict[str, int]:
    """Wire the lab internet namespace (idempotent) and start whichever of its services does
    not run; return the services' PIDs. nsd may still be loading: see :func:`wait_ready`."""
    network.attach_netns(
        internet.netns,
        internet.veth_host,
        bridge,
        internet.underlay,
        prefixlen,
        internet.underlay6,
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = dict(pids)
    if not (ECHO in pids and _is_ours(pids[ECHO], _marker(ECHO, directory, internet))):
        started[ECHO] = _start_echo(internet)
    if not (NSD in pids and _is_ours(pids[NSD], _marker(NSD, directory, internet))):
        started[NSD] = _launch_nsd(internet, directory)
    return started


def stop(pids: dict[str, int], directory: Path, internet: LabInternet) -> list[str]:
    """Stop the services we recorded (SIGTERM, then SIGKILL); the namespace sweep of `lab down`
    catches anything else left in the namespace."""
    stopped = []
    for service, pid in pids.items():
        if _is_ours(pid, _marker(service, directory, internet)):
            stop_pid(pid)
            stopped.append(f"process {pid} ({service})")
    return stopped
