"""Helpers for leak tests on the lab internet: ask its echo service and its DNS from inside a
lab namespace, capture what crosses a link, and read who asked which name.

    with capture(lab, client.netns) as on_client, capture(lab, internet.netns) as query_log:
        echo_source(client.netns, internet.underlay, "udp")
        dig(client.netns, "x.lab.example", "AAAA")            # through the namespace's resolv.conf
    leaving = [p for p in on_client if p.src in client_addresses and not p.is_link_control]
    dns_queries(query_log)                                 # [(source, type, name), ...]
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from orchestrator.adapters.lab.capture import capturing
from orchestrator.core.lab_layout import plan_layout
from orchestrator.core.packets import Packet
from tests.conftest import Lab

Address = ipaddress.IPv4Address | ipaddress.IPv6Address | str


def echo_source(netns: str, address: Address, protocol: str, port: int = 7) -> str:
    """Ask the lab internet's echo service from ``netns``: the source address it saw."""
    result = subprocess.run(
        [
            *("ip", "netns", "exec", netns, sys.executable, "-m", "orchestrator.adapters.lab.echo"),
            *("ask", protocol, str(address), str(port)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def dig(netns: str, name: str, qtype: str = "A", server: Address | None = None) -> list[str]:
    """Resolve ``name`` from ``netns`` with dig: at ``server``, or through the namespace's
    /etc/resolv.conf (the one a wg-quick tunnel's DNS line wrote). Answers, one per line."""
    argv = ["ip", "netns", "exec", netns, "dig", "+short", "+tries=1", "+time=3"]
    if server is not None:
        argv.append(f"@{server}")
    result = subprocess.run(
        [*argv, name, qtype], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()


@contextmanager
def capture(lab: Lab, netns: str, interface: str = "eth0") -> Iterator[list[Packet]]:
    """tcpdump on ``netns``'s ``interface`` for the block; the list fills when it ends."""
    output = lab.settings.lab.state_dir / "captures" / f"{netns}.{interface}.txt"
    bridge = plan_layout(lab.settings.lab.name, lab.settings.lab.subnet, 0, 0).bridge
    with capturing(
        netns, output, interface, bridge=bridge if interface == "eth0" else None
    ) as packets:
        yield packets


def dns_queries(packets: Iterable[Packet]) -> list[tuple[str, str, str]]:
    """``(source address, type, name)`` of every DNS query in a capture: the lab internet's
    query log when the capture ran in its namespace."""
    return [(p.src, *q) for p in packets if (q := p.dns_question) is not None]


def sent_by(packets: Iterable[Packet], *addresses: Address) -> list[Packet]:
    """Packets from ``addresses`` towards somewhere, without the link's own chatter (ARP,
    neighbour and router discovery, multicast listener reports)."""
    sources = {str(a) for a in addresses}
    return [p for p in packets if p.src in sources and not p.is_link_control]
