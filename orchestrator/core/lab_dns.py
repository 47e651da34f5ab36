"""The lab internet's authoritative DNS: nsd's configuration and the lab zone, as text.

Every path nsd would otherwise take from its compiled-in defaults (/etc/nsd, /var/lib/nsd,
/run/nsd) is set to the lab's own directory, so a lab's nsd shares nothing with the host or
with another lab, and it listens only on the lab internet's two addresses.
"""

from __future__ import annotations

import ipaddress
from pathlib import PurePath

from orchestrator.core.lab_layout import LabInternet

ZONE_TTL = 60
# Fixed: the zone is written once per `lab up` and nothing transfers it.
ZONE_SERIAL = 1
# Names of the zone besides the wildcard: the lab internet host itself and its name server.
HOST_LABELS = ("ns", "echo", "inet")


def zone_file_name(internet: LabInternet) -> str:
    return internet.zone.rstrip(".") + ".zone"


def render_nsd_conf(internet: LabInternet, directory: PurePath) -> str:
    """nsd.conf for the lab internet: foreground-friendly, no control socket, no database,
    no privilege change (the lab runs it as root in its own namespace, files in ``directory``)."""
    listen = "\n".join(f"    ip-address: {address}" for address in internet.addresses)
    return f"""# Written by `wgfleet lab up`: the lab internet's nsd for {internet.zone}
server:
{listen}
    port: {internet.dns_port}
    do-ip4: yes
    do-ip6: yes
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{directory}"
    database: ""
    zonelistfile: "{directory / "zone.list"}"
    xfrdfile: "{directory / "xfrd.state"}"
    xfrdir: "{directory}"
    pidfile: "{directory / "nsd.pid"}"
    logfile: "{directory / "nsd.log"}"
    hide-version: yes
    hide-identity: yes
    verbosity: 1

remote-control:
    control-enable: no

zone:
    name: "{internet.zone}"
    zonefile: "{zone_file_name(internet)}"
"""


def _records(name: str, addresses: tuple[ipaddress.IPv4Address, ipaddress.IPv6Address]) -> str:
    v4, v6 = addresses
    return f"{name}\tIN\tA\t{v4}\n{name}\tIN\tAAAA\t{v6}\n"


def render_zone(internet: LabInternet) -> str:
    """The lab zone: every name in it (a wildcard, so a test can make up fresh canary names)
    answers with the lab internet's addresses."""
    zone = internet.zone
    lines = [
        f"$ORIGIN {zone}\n",
        f"$TTL {ZONE_TTL}\n",
        f"@\tIN\tSOA\tns.{zone} hostmaster.{zone} {ZONE_SERIAL} 3600 600 86400 {ZONE_TTL}\n",
        f"@\tIN\tNS\tns.{zone}\n",
        _records("@", internet.addresses),
        *(_records(label, internet.addresses) for label in HOST_LABELS),
        _records("*", internet.addresses),
    ]
    return "".join(lines)
