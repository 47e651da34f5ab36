"""The lab's wiring on the host: one bridge, one network namespace and veth pair per machine.

No namespace gets a default route: lab machines reach the lab subnet (and its IPv6 /64) and
nothing else. IPv6 addresses are added with ``nodad``: duplicate address detection would hold
each one "tentative" for a second or more, and the lab's addresses are unique by construction.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.proc import run

NETNS_DIR = Path("/run/netns")


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _add_address6(
    ip: list[str],
    device: str,
    address: ipaddress.IPv6Address | None,
    prefixlen: int,
    flags: tuple[str, ...] = (),
) -> None:
    if address is None:
        return
    current = run([*ip, "-o", "-6", "addr", "show", "dev", device]).stdout
    if f" {address}/{prefixlen} " not in current:
        run([*ip, "-6", "addr", "add", f"{address}/{prefixlen}", "dev", device, "nodad", *flags])


def ensure_bridge(
    name: str,
    address: ipaddress.IPv4Address,
    prefixlen: int,
    address6: ipaddress.IPv6Address | None = None,
    prefixlen6: int = 64,
) -> None:
    if not link_exists(name):
        run(["ip", "link", "add", name, "type", "bridge"])
    current = run(["ip", "-o", "-4", "addr", "show", "dev", name]).stdout
    if f"{address}/{prefixlen}" not in current:
        run(["ip", "addr", "add", f"{address}/{prefixlen}", "dev", name])
    _add_address6(["ip"], name, address6, prefixlen6)
    run(["ip", "link", "set", name, "up"])


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "del", name], check=False)


def netns_list() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def netns_pids(name: str) -> list[int]:
    if not netns_exists(name):
        return []
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(pid) for pid in out.split() if pid.isdigit()]


def attach_netns(
    netns: str,
    host_link: str,
    bridge: str,
    address: ipaddress.IPv4Address,
    prefixlen: int,
    address6: ipaddress.IPv6Address | None = None,
    prefixlen6: int = 64,
    routes: ClientRoutes | None = None,
) -> None:
    """Create ``netns`` with ``eth0`` on ``bridge`` at ``address`` (and ``address6``);
    idempotent. With ``routes`` the addresses make no subnet route: ``routes`` says which
    networks are on-link and which gateways the default routes use (a lab client's)."""
    flags = ("noprefixroute",) if routes is not None else ()
    if not netns_exists(netns):
        run(["ip", "netns", "add", netns])
    if not link_exists(host_link):
        run(
            ["ip", "link", "add", host_link, "type", "veth", "peer", "name", "eth0", "netns", netns]
        )
    run(["ip", "link", "set", host_link, "master", bridge, "up"])
    current = run(["ip", "-n", netns, "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
    if f"{address}/{prefixlen}" not in current:
        run(["ip", "-n", netns, "addr", "add", f"{address}/{prefixlen}", "dev", "eth0", *flags])
    _add_address6(["ip", "-n", netns], "eth0", address6, prefixlen6, flags)
    run(["ip", "-n", netns, "link", "set", "lo", "up"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    if routes is not None:
        run(["ip", "-n", netns, "-batch", "-"], input_text=routes.batch("eth0"))


@dataclass(frozen=True)
class ClientRoutes:
    onlink: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    gateways: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]
    metric: int

    def batch(self, device: str) -> str:
        """`ip -batch` lines; `replace` keeps them idempotent. A tunnel's own default route
        (metric 0) is another route than these and never replaces them."""
        lines = [f"route replace {network} dev {device}" for network in self.onlink]
        lines += [
            f"route replace default via {gateway} dev {device} onlink metric {self.metric}"
            for gateway in self.gateways
        ]
        return "\n".join(lines) + "\n"


def delete_netns(netns: str, host_link: str) -> None:
    delete_link(host_link)
    if netns_exists(netns):
        run(["ip", "netns", "del", netns], check=False)


def netns_dir_is_mount() -> bool:
    target = str(NETNS_DIR)
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return any(line.split()[4] == target for line in mountinfo)


# Set when a lab's first namespace made `ip` bind-mount /run/netns; shared by every lab on the
# machine, so whichever lab goes down last undoes it. /run is tmpfs: a reboot forgets both.
NETNS_MOUNT_MARKER = Path("/run/wgfleet-lab-made-netns-mount")


def note_netns_dir_state() -> None:
    """Call before creating namespaces: remember whether /run/netns was a mount already."""
    if not netns_dir_is_mount() and not netns_list():
        NETNS_MOUNT_MARKER.write_text("wgfleet lab\n", encoding="ascii")


def release_netns_dir() -> None:
    """After the last namespace is gone `ip` leaves /run/netns bind-mounted on itself: undo
    that if a lab made it, leave it if it was there before any lab."""
    if NETNS_MOUNT_MARKER.exists() and not netns_list():
        if netns_dir_is_mount():
            run(["umount", str(NETNS_DIR)], check=False)
        NETNS_MOUNT_MARKER.unlink(missing_ok=True)
