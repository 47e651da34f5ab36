"""What an inventory host (and the deploy's static peers) may hold, checked on the controller.

An inventory is outside input: its host names become file names, Ansible host patterns and the
store's node names; its variables reach SSH targets, the wgfleet-peers request, and the node's
wg-quick file, where a static peer's ``preshared_key_file`` is a word of a `PostUp` shell line
(`wg set %i peer KEY preshared-key FILE`) and its ``allowed_ips`` a line of the config. So the
variables wgfleet itself reads, and those that reach a shell line, are checked here before any
deploy; the role asserts the same rules on the node (roles/wireguard_node/tasks/main.yml).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestrator.core.node_names import node_name_problem
from orchestrator.core.peers import valid_key

# Absolute, no `..` component, no character a shell or wg-quick would read specially.
PSK_FILE_PATTERN = r"^/[A-Za-z0-9._/-]{1,254}$"
PSK_FILE_RE = re.compile(PSK_FILE_PATTERN)
# What the role's assert allows (Linux: at most 15 bytes with the overlap twin's "n"), but
# never starting with '-', which a node command would read as an option.
INTERFACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_=+.-]{0,13}$")
# A DNS name (underscores allowed: /etc/hosts names carry them), never starting with '-',
# which OpenSSH would read as an option.
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$"
)
PEER_FIELDS = frozenset({"public_key", "allowed_ips", "preshared_key_file"})
MAX_STATIC_PEERS = 10_000
MAX_ALLOWED_IPS = 1_000


@dataclass(frozen=True)
class Problem:
    """One refused value: ``field`` is dotted from the host (``node1.wireguard_port``);
    ``host`` and ``variable`` say where it was written (for the line of the error)."""

    field: str
    value: object
    problem: str
    host: str = ""
    variable: str = ""


def _port(value: object) -> bool:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _ipv6_address(value: object) -> bool:
    try:
        ipaddress.IPv6Address(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def host_problems(name: str, variables: Mapping[str, object]) -> list[Problem]:
    """Every problem of one inventory host: its name and the variables wgfleet relies on."""
    problems: list[Problem] = []
    if (why := node_name_problem(name)) is not None:
        problems.append(Problem(name, name, why, host=name))
        return problems  # its variables would be reported under a name that cannot be used

    def check(key: str, ok: bool, problem: str) -> None:
        if key in variables and not ok:
            problems.append(Problem(f"{name}.{key}", variables[key], problem, name, key))

    host = variables.get("ansible_host")
    check("ansible_host", _address_or_hostname(host), "an IP address or a DNS host name")
    check("ansible_port", _port(variables.get("ansible_port")), "a port, 1..65535")
    check("wireguard_port", _port(variables.get("wireguard_port")), "a port, 1..65535")
    network = variables.get("wgfleet_tunnel_network")
    check("wgfleet_tunnel_network", _ipv4_network(network), "an IPv4 network such as 198.19.1.0/24")
    address = variables.get("wgfleet_tunnel_address")
    check("wgfleet_tunnel_address", _ipv4_address(address), "an IPv4 address")
    # Dual-stack: the node's IPv6 underlay address, which address client Endpoints name, and
    # where clients' IPv6 goes.
    underlay6 = variables.get("wgfleet_underlay_address6")
    check("wgfleet_underlay_address6", _ipv6_address(underlay6), "an IPv6 address")
    endpoint = variables.get("wgfleet_client_endpoint")
    check(
        "wgfleet_client_endpoint",
        endpoint == "ipv4" or (endpoint == "ipv6" and _ipv6_address(underlay6)),
        "ipv4, or ipv6 with wgfleet_underlay_address6 set",
    )
    egress = variables.get("wireguard_ipv6_egress")
    check("wireguard_ipv6_egress", egress in ("nat66", "routed", "off"), "nat66, routed or off")
    interface = variables.get("wireguard_interface")
    check(
        "wireguard_interface",
        isinstance(interface, str) and INTERFACE_RE.fullmatch(interface) is not None,
        "1-14 letters, digits or _ = + . - (not starting with -)",
    )
    found = []
    if "wireguard_peers" in variables:
        found += static_peer_problems(variables["wireguard_peers"], f"{name}.wireguard_peers")
    if "wgfleet_static_peers" in variables:
        found += static_peers_problems(variables["wgfleet_static_peers"], name)
    problems += [
        Problem(p.field, p.value, p.problem, name, re.split(r"[.\[]", p.field[len(name) + 1 :])[0])
        for p in found
    ]
    return problems


def static_peers_problems(value: object, where: str = "") -> list[Problem]:
    """``wgfleet_static_peers`` (host name -> its static peers), as the deploy passes it."""
    prefix = f"{where}.wgfleet_static_peers" if where else "wgfleet_static_peers"
    if not isinstance(value, Mapping):
        return [Problem(prefix, value, "a mapping of node names to lists of peers")]
    problems: list[Problem] = []
    for host, peers in value.items():
        if (why := node_name_problem(host)) is not None:
            problems.append(Problem(f"{prefix}.{host}", host, why))
            continue
        problems += static_peer_problems(peers, f"{prefix}.{host}")
    return problems


def static_peer_problems(peers: object, where: str) -> list[Problem]:
    """A wireguard_node role ``wireguard_peers`` list: every field that reaches the node's
    wg-quick file, checked for exactly what it may be."""
    if not isinstance(peers, list):
        return [Problem(where, peers, "a list of peers")]
    if len(peers) > MAX_STATIC_PEERS:
        return [Problem(where, f"{len(peers)} peers", f"at most {MAX_STATIC_PEERS}")]
    problems: list[Problem] = []
    for index, peer in enumerate(peers):
        at = f"{where}[{index}]"
        if not isinstance(peer, Mapping):
            problems.append(
                Problem(at, peer, "a peer: public_key, allowed_ips[, preshared_key_file]")
            )
            continue
        unknown = sorted(str(k) for k in peer if k not in PEER_FIELDS)
        if unknown:
            problems.append(
                Problem(
                    f"{at}.{unknown[0]}",
                    peer[unknown[0]],
                    "unknown field (known: allowed_ips, preshared_key_file, public_key)",
                )
            )
        key = peer.get("public_key")
        if not isinstance(key, str) or not valid_key(key):
            problems.append(Problem(f"{at}.public_key", key, "not a WireGuard public key"))
        problems += _allowed_ips_problems(peer.get("allowed_ips"), f"{at}.allowed_ips")
        if "preshared_key_file" in peer:
            path = peer["preshared_key_file"]
            if (
                not isinstance(path, str)
                or PSK_FILE_RE.fullmatch(path) is None
                or ".." in path.split("/")
            ):
                problems.append(
                    Problem(
                        f"{at}.preshared_key_file",
                        path,
                        "an absolute path of letters, digits and . _ / - (no '..')",
                    )
                )
    return problems


def _allowed_ips_problems(value: object, where: str) -> list[Problem]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        return [Problem(where, value, "a network or a list of networks")]
    if len(items) > MAX_ALLOWED_IPS:
        return [Problem(where, f"{len(items)} networks", f"at most {MAX_ALLOWED_IPS}")]
    for item in items:
        if not isinstance(item, str) or not item.isascii() or item.strip() != item:
            return [Problem(where, item, "a network such as 198.19.1.2/32")]
        try:
            ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            return [Problem(where, item, str(exc))]
    return []


def _reads_as(parse: Callable[[str], object], value: object) -> bool:
    """``value`` is ASCII text that ``parse`` takes (ipaddress reads other scripts' digits)."""
    if not isinstance(value, str) or not value.isascii():
        return False
    try:
        parse(value)
    except ValueError:
        return False
    return True


def _address_or_hostname(value: object) -> bool:
    if _reads_as(ipaddress.ip_address, value):
        return True
    return isinstance(value, str) and value.isascii() and HOSTNAME_RE.fullmatch(value) is not None


def _ipv4_address(value: object) -> bool:
    return _reads_as(ipaddress.IPv4Address, value)


def _ipv4_network(value: object) -> bool:
    if not isinstance(value, str) or not value.isascii():
        return False
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return True
