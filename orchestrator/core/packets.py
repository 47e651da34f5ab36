"""What a lab capture saw, parsed from ``tcpdump -n -tt`` lines (no ``-v``, no ``-e``).

Only what leak tests ask is parsed: family, addresses, ports, transport, and for DNS the
question; the rest of the line stays in ``info``. Lines tcpdump prints for other link
protocols become packets of family ``other`` so nothing that crossed is ever dropped.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

_LINE = re.compile(r"^(?P<time>\d+\.\d+) (?P<rest>.*)$")
_IP = re.compile(r"^(?P<family>IP6?) (?P<src>\S+) > (?P<dst>\S+): (?P<info>.*)$")
# "12345+ [1au] A? name.lab.example. (51)" (UDP) or "..., length 55 12345+ A? name. (53)" (TCP).
_DNS_QUESTION = re.compile(
    r"(?:^|length \d+:? )\d+\+?%? (?:\[\w+\] )?(?P<qtype>[A-Z0-9]+)\? (?P<name>\S+) "
)
# ICMPv6 that only resolves neighbours or manages multicast membership on the link.
_LINK_ICMP6 = (
    "neighbor solicitation",
    "neighbor advertisement",
    "router solicitation",
    "router advertisement",
    "multicast listener",
)


@dataclass(frozen=True)
class Packet:
    time: float
    family: str  # "ip", "ip6", "arp" or "other"
    protocol: str  # "tcp", "udp", "icmp", "icmp6", "arp" or "other"
    src: str  # an address without its port ("" when the line names none)
    dst: str
    sport: int | None
    dport: int | None
    info: str
    line: str

    @property
    def is_link_control(self) -> bool:
        """ARP and IPv6 neighbour/router discovery and multicast listener reports: what any
        host says to its link to reach a neighbour, never a packet towards a destination."""
        if self.protocol == "arp":
            return True
        return self.protocol == "icmp6" and any(kind in self.info for kind in _LINK_ICMP6)

    @property
    def dns_question(self) -> tuple[str, str] | None:
        """``(type, name)`` of a DNS query (not an answer), e.g. ``("AAAA", "x.lab.example.")``."""
        if self.dport != 53:
            return None
        match = _DNS_QUESTION.search(self.info)
        return (match["qtype"], match["name"]) if match else None


def _split_port(family: str, endpoint: str) -> tuple[str, int | None]:
    """``198.18.0.2.53`` -> (198.18.0.2, 53); ``2001:2::2.53`` -> (2001:2::2, 53)."""
    try:
        ipaddress.ip_address(endpoint)
        return endpoint, None
    except ValueError:
        pass
    address, _, port = endpoint.rpartition(".")
    if port.isdigit():
        try:
            ipaddress.ip_address(address)
            return address, int(port)
        except ValueError:
            pass
    return endpoint, None


def _protocol(family: str, info: str, has_ports: bool) -> str:
    if info.startswith("Flags ["):
        return "tcp"
    if "ICMP6" in info.split(",", 1)[0]:
        return "icmp6"
    if info.startswith("ICMP"):
        return "icmp"
    return "udp" if has_ports else "other"


def parse_tcpdump_line(line: str) -> Packet | None:
    """One packet from one line; None for a line that is not a packet (a blank one)."""
    match = _LINE.match(line.strip())
    if not match:
        return None
    time, rest = float(match["time"]), match["rest"]
    ip = _IP.match(rest)
    if ip:
        family = ip["family"].lower()
        src, sport = _split_port(family, ip["src"])
        dst, dport = _split_port(family, ip["dst"])
        info = ip["info"]
        protocol = _protocol(family, info, sport is not None and dport is not None)
        return Packet(time, family, protocol, src, dst, sport, dport, info, line)
    if rest.startswith("ARP"):
        return Packet(time, "arp", "arp", "", "", None, None, rest, line)
    return Packet(time, "other", "other", "", "", None, None, rest, line)


def parse_tcpdump_lines(lines: Iterable[str]) -> list[Packet]:
    return [packet for line in lines if (packet := parse_tcpdump_line(line)) is not None]
