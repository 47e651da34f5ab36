"""Every lab and address block a test process uses lies in its worker's subnet, apart from the
others, and two workers or two runs never share one (tests/worker_space.py)."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from orchestrator.core.lab_layout import underlay6_network
from tests import worker_space


def blocks(monkeypatch: pytest.MonkeyPatch, worker: str, name: str, subnet: str) -> dict:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("WGFLEET_TEST_LAB_NAME", name)
    monkeypatch.setenv("WGFLEET_TEST_LAB_SUBNET", subnet)
    netns, nodes, link = worker_space.synthetic_space()
    labs = [worker_space.session_lab()] + [
        worker_space.derived_lab(p) for p in worker_space.DERIVED_LABS
    ]
    return {
        "names": [lab_name for lab_name, _ in labs] + [netns],
        "networks": [ipaddress.IPv4Network(s) for _, s in labs]
        + [nodes, link, ipaddress.IPv4Network(f"{worker_space.unreached_node_address(0)}/27")],
        "space": ipaddress.IPv4Network(worker_space.worker_lab()[1]),
        "networks6": list(worker_space.synthetic_space6()),
    }


def test_a_workers_blocks_lie_in_its_subnet_apart_from_each_other(monkeypatch) -> None:
    made = blocks(monkeypatch, "gw0", "cf", "198.18.128.0/20")
    assert all(n.subnet_of(made["space"]) for n in made["networks"])
    assert not any(a.overlaps(b) for a, b in itertools.combinations(made["networks"], 2))
    assert len(set(made["names"])) == len(made["names"])
    assert all(len(n) <= 6 for n in made["names"][:-1])  # settings' lab name limit
    nodes6, link6 = made["networks6"]
    own64 = underlay6_network(made["space"])
    assert nodes6.subnet_of(own64) and link6.subnet_of(own64) and not nodes6.overlaps(link6)
    assert nodes6.num_addresses >= 10_000
    # Clear of a lab on the same subnet: its IPv4 mirrors and its internet's upper half.
    mirrors = ipaddress.IPv6Network((own64.network_address, 116))
    upper_half = ipaddress.IPv6Network((int(own64.network_address) + 2**63, 65))
    assert not any(n.overlaps(m) for n in (nodes6, link6) for m in (mirrors, upper_half))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("gw0", "cf", "198.18.128.0/20"), ("gw1", "cf", "198.18.128.0/20")),
        (("gw0", "t", "198.18.32.0/20"), ("gw0", "cf", "198.18.128.0/20")),
        (("gw0", "store", "198.18.64.0/20"), ("gw1", "store", "198.18.64.0/20")),
    ],
)
def test_two_workers_or_runs_share_no_name_nor_address(monkeypatch, one, other) -> None:
    first, second = blocks(monkeypatch, *one), blocks(monkeypatch, *other)
    assert not set(first["names"]) & set(second["names"])
    assert not any(a.overlaps(b) for a in first["networks"] for b in second["networks"])
    assert not any(a.overlaps(b) for a in first["networks6"] for b in second["networks6"])


def test_a_subnet_too_small_to_cut_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("WGFLEET_TEST_LAB_NAME", "x")
    monkeypatch.setenv("WGFLEET_TEST_LAB_SUBNET", "198.18.128.0/24")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    with pytest.raises(ValueError, match="/22 or larger"):
        worker_space.session_lab()
