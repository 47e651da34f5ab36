"""Every lab name, subnet and address block a test or benchmark process uses, derived from the
process's own lab (its worker's): two test runs with different $WGFLEET_TEST_LAB_NAME/_SUBNET,
or two xdist workers of one run, never share a name, a namespace or an address.

The worker's subnet (a /20 by default) is cut into quarters:

| part | what uses it |
| --- | --- |
| lower half | the session's lab (the `lab` fixture: 3 nodes, 2 clients) |
| third quarter | synthetic nodes (tests/synthetic_nodes.py: up to 1,000 addresses) |
| fourth quarter, 1st quarter | test_lab_lifecycle's own small lab |
| fourth quarter, 2nd quarter | bench_node_push's lab |
| fourth quarter, 3rd quarter | bench_deploy's lab |
| fourth quarter, 4th quarter | lower half: node addresses stored but never reached (TUI, canaries); upper half: the synthetic nodes' link (/30) |

Synthetic nodes beyond the third quarter's 1,022 IPv4 addresses are IPv6: a /112 and the link's
/126 in the worker subnet's own /64 (lab_layout.underlay6_network), far above the offsets
0..4095 that mirror its IPv4 addresses and below the lab internet's upper half.

A derived lab's name is a short tag and the number of the worker's subnet in 198.18.0.0/16
(heap order, as lab_layout.underlay6_network numbers it: 198.18.128.0/20 is 24), so it is
unique for every worker subnet: lab "cf" on 198.18.128.0/20 has "lc24", "bp24", "bd24" and the
namespace "wgsyn24".
"""

from __future__ import annotations

import ipaddress
import os

from orchestrator.core.lab_layout import UNDERLAY_NETWORK, underlay6_network

# Worker index -> (lab name, subnet) when neither $WGFLEET_TEST_LAB_NAME nor _SUBNET is set.
WORKER_LABS = (("t", "198.18.32.0/20"), ("u", "198.18.16.0/20"))
# A /22 at least: its sixteenths (/26) still hold bench_deploy's 20 nodes below their clients,
# and its last /27 the stored node addresses and the synthetic link.
LONGEST_WORKER_PREFIX = 22
DERIVED_LABS = ("lifecycle", "bench-push", "bench-deploy")
DERIVED_TAGS = {"lifecycle": "lc", "bench-push": "bp", "bench-deploy": "bd"}
# Offsets in the worker's /64 of the synthetic IPv6 node block (/112: 65,536 addresses) and
# link (/126); a lab on the worker subnet uses offsets 0..4095 and the upper half only.
SYNTHETIC6_NODES_OFFSET = 0x1_0000
SYNTHETIC6_LINK_OFFSET = 0x2_0000


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(worker) if worker.isdigit() else 0


def worker_lab() -> tuple[str, str]:
    """This process's lab name and subnet: $WGFLEET_TEST_LAB_NAME/_SUBNET (a second test run
    beside this one, e.g. a benchmark's), else the defaults; a second xdist worker gets a name
    and a subnet of the same size of its own (the next one up)."""
    index = worker_index()
    default_name, default_subnet = WORKER_LABS[min(index, len(WORKER_LABS) - 1)]
    name = os.environ.get("WGFLEET_TEST_LAB_NAME")
    subnet = os.environ.get("WGFLEET_TEST_LAB_SUBNET")
    if name is None or subnet is None:
        return default_name, default_subnet
    if index == 0:
        return name, subnet
    network = ipaddress.ip_network(subnet)
    return f"{name[:5]}{index}", str(
        ipaddress.ip_network(
            (int(network.network_address) + index * network.num_addresses, network.prefixlen)
        )
    )


def worker_subnet() -> ipaddress.IPv4Network:
    subnet = ipaddress.IPv4Network(worker_lab()[1])
    if not subnet.subnet_of(UNDERLAY_NETWORK) or subnet.prefixlen > LONGEST_WORKER_PREFIX:
        raise ValueError(
            f"test lab subnet {subnet}: a /{LONGEST_WORKER_PREFIX} or larger inside"
            f" {UNDERLAY_NETWORK} (tests/worker_space.py cuts it into the labs tests use)"
        )
    return subnet


def worker_number() -> int:
    """The worker subnet's number in 198.18.0.0/16 (heap order): unique for every subnet."""
    subnet = worker_subnet()
    depth = subnet.prefixlen - UNDERLAY_NETWORK.prefixlen
    offset = int(subnet.network_address) - int(UNDERLAY_NETWORK.network_address)
    return (1 << depth) | (offset >> (32 - subnet.prefixlen))


def _quarters(network: ipaddress.IPv4Network) -> list[ipaddress.IPv4Network]:
    return list(network.subnets(prefixlen_diff=2))


def session_lab() -> tuple[str, str]:
    """The `lab` fixture's name and subnet: the worker's name, the lower half of its subnet."""
    name = worker_lab()[0]
    return name, str(next(worker_subnet().subnets(prefixlen_diff=1)))


def derived_lab(purpose: str) -> tuple[str, str]:
    """The name and subnet of a lab a test or benchmark builds besides the session's."""
    part = _quarters(_quarters(worker_subnet())[3])[DERIVED_LABS.index(purpose)]
    return f"{DERIVED_TAGS[purpose]}{worker_number()}", str(part)


def unreached_node_address(index: int) -> str:
    """A node address tests store but never connect to (no pinned host key, or no route)."""
    block = next(_quarters(_quarters(worker_subnet())[3])[3].subnets(prefixlen_diff=1))
    return str(block[index])


def synthetic_space() -> tuple[str, ipaddress.IPv4Network, ipaddress.IPv4Network]:
    """The synthetic nodes' namespace name, node network and host link network."""
    last = list(_quarters(_quarters(worker_subnet())[3])[3].subnets(prefixlen_diff=1))[1]
    link = next(last.subnets(new_prefix=30))
    return f"wgsyn{worker_number()}", _quarters(worker_subnet())[2], link


def synthetic_space6() -> tuple[ipaddress.IPv6Network, ipaddress.IPv6Network]:
    """The synthetic nodes' IPv6 node network and host link network (see the table above)."""
    base = int(underlay6_network(worker_subnet()).network_address)
    return (
        ipaddress.IPv6Network((base + SYNTHETIC6_NODES_OFFSET, 112)),
        ipaddress.IPv6Network((base + SYNTHETIC6_LINK_OFFSET, 126)),
    )
