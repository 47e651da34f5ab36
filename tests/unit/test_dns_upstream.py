"""Forwarders as the node resolver takes them (settings and fleet file dns.forwarders)."""

from __future__ import annotations

import pytest

from orchestrator.core.dns_upstream import MAX_FORWARDERS, forwarder_problem, forwarders_problem


@pytest.mark.parametrize(
    "value", ["198.18.0.53", "2001:2::53", "198.18.0.53@5353", "198.18.0.53@853#dns.example.net"]
)
def test_good_forwarders(value: str) -> None:
    assert forwarder_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "dns.example.net",
        "198.18.0.53@0",
        "198.18.0.53@65536",
        "198.18.0.53@x",
        "198.18.0.53#",
        "198.18.0.53#bad name",
        "198.18.0.53 forward-addr: 1.1.1.1",
        "198.18.0.53\nlog-queries: yes",
        5,
        None,
    ],
)
def test_bad_forwarders(value: object) -> None:
    assert forwarder_problem(value) is not None


def test_forwarder_lists() -> None:
    assert forwarders_problem([]) is None
    assert forwarders_problem(["198.18.0.53", "198.18.0.54"]) is None
    assert forwarders_problem("198.18.0.53") == "a list of forwarders"
    assert forwarders_problem(["198.18.0.53"] * 2) == "a forwarder is listed twice"
    many = [f"198.18.0.{i}" for i in range(MAX_FORWARDERS + 1)]
    assert forwarders_problem(many) == f"at most {MAX_FORWARDERS} forwarders"
