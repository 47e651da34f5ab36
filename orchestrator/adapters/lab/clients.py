"""Lab VPN clients: network namespaces running a userspace WireGuard peer from a wg-quick config.

The client consumes exactly the configuration a user would receive. wireguard-go runs in the
foreground as our child so its PID is known; its private key reaches `wg` on stdin, never a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from orchestrator.adapters.proc import run
from orchestrator.core.lab_layout import LabClient
from orchestrator.core.wgquick import parse_wg_quick
from orchestrator.errors import LabError

USERSPACE_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
UAPI_DIR = Path("/var/run/wireguard")


def _in_netns(client: LabClient, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", client.netns, *argv]


def tunnel_pid(client: LabClient, pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if args and args[0].endswith(b"wireguard-go") and client.wg_interface.encode() in args:
        return pid
    return None


def tunnel_up(client: LabClient, config_text: str, pid_file: Path) -> int:
    """Bring the client's tunnel up from a wg-quick config; return wireguard-go's PID."""
    config = parse_wg_quick(config_text)
    tunnel_down(client, pid_file)
    with open(os.devnull, "wb") as devnull:
        process = subprocess.Popen(
            _in_netns(client, "wireguard-go", "-f", client.wg_interface),
            stdin=subprocess.DEVNULL,
            stdout=devnull,
            stderr=devnull,
            env={**os.environ, **USERSPACE_ENV, "LOG_LEVEL": "error"},
            start_new_session=True,
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{process.pid}\n", encoding="ascii")
    socket = UAPI_DIR / f"{client.wg_interface}.sock"
    deadline = time.monotonic() + 10
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"{client.name}: wireguard-go did not start for {client.wg_interface}")
        time.sleep(0.02)
    try:
        run(
            _in_netns(client, "wg", "setconf", client.wg_interface, "/dev/stdin"),
            input_text=config.stripped(),
        )
        for address in config.addresses:
            # IPv6 (the config's /128) without duplicate address detection: a tentative
            # address cannot be a source for its first second or so, and on a point-to-point
            # tunnel there is nobody to collide with.
            nodad = ["nodad"] if address.version == 6 else []
            run(
                [
                    "ip",
                    "-n",
                    client.netns,
                    "addr",
                    "add",
                    str(address),
                    "dev",
                    client.wg_interface,
                    *nodad,
                ]
            )
        # No link-local address: the kernel would send router solicitations from it through the
        # tunnel (::/0) at random moments (80 bytes each on the node's counter), and tests that
        # compare the store with the node's counters to the byte read between two of them.
        run(["ip", "-n", client.netns, "link", "set", client.wg_interface, "addrgenmode", "none"])
        run(["ip", "-n", client.netns, "link", "set", client.wg_interface, "up"])
        # Every AllowedIPs network of either family through the tunnel (0.0.0.0/0 and ::/0
        # for a config as handed out): IPv6 takes the tunnel too, never the client's underlay.
        # Metric 1, not the default: the client's own default route to the lab internet has
        # metric 1000, and IPv6 gives a route without a metric 1024, which would lose to it.
        for network in config.allowed_ips():
            run(
                [
                    *("ip", "-n", client.netns, "route", "replace", str(network)),
                    *("dev", client.wg_interface, "metric", "1"),
                ]
            )
    except LabError:
        tunnel_down(client, pid_file)
        raise
    return process.pid


def tunnel_down(client: LabClient, pid_file: Path) -> None:
    pid = tunnel_pid(client, pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                pass
            time.sleep(0.02)
        else:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    (UAPI_DIR / f"{client.wg_interface}.sock").unlink(missing_ok=True)


def ping_from(
    netns: str,
    address: str,
    *,
    count: int = 3,
    interval: float = 0.2,
    size: int | None = None,
    wait: float = 2,
) -> subprocess.CompletedProcess[str]:
    """ICMP echo from inside a lab namespace (a client's, usually) through whatever route it has."""
    argv = [
        "ip",
        "netns",
        "exec",
        netns,
        "ping",
        "-c",
        str(count),
        "-i",
        str(interval),
        "-W",
        str(wait),
    ]
    if size is not None:
        argv += ["-s", str(size)]
    return subprocess.run(
        [*argv, address], capture_output=True, text=True, check=False, timeout=120
    )
