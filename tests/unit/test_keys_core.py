"""Key policy, rotation-aware desired state and the protocols' rotation sections (pure core)."""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Any

import pytest

from orchestrator.adapters.wgkeys import new_keypair
from orchestrator.core.collector import CounterParseError, parse_counters
from orchestrator.core.keys import KeyKind, KeyPolicy, KeyRecord, key_ages, parse_duration
from orchestrator.core.models import Configuration, Node
from orchestrator.core.peers import desired_peers, render_client_config
from orchestrator.core.push_protocol import parse_answer, render_request

OLD, NEW = new_keypair().public_key, new_keypair().public_key


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("30s", 30), ("15m", 900), ("12h", 43200), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "1w", "-1d", "1.5h", "d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_key_ages_put_overdue_and_unknown_first() -> None:
    policy = KeyPolicy({KeyKind.NODE: 180, KeyKind.PEER: 365, KeyKind.PSK: 365, KeyKind.SSH: 90})
    today = date(2026, 11, 23)
    ages = key_ages(
        [
            KeyRecord(KeyKind.PEER, "alice-1", OLD, date(2026, 11, 1)),
            KeyRecord(KeyKind.NODE, "node1", NEW, date(2026, 5, 1)),  # 206 days > 180
            KeyRecord(KeyKind.SSH, "deploy", "ssh-ed25519 AAAA", None),
            KeyRecord(KeyKind.SSH, "collector", "ssh-ed25519 BBBB", date(2026, 8, 25)),  # 90 days
        ],
        policy,
        today,
    )
    assert [(a.record.subject, a.age_days, a.overdue) for a in ages] == [
        ("deploy", None, True),
        ("node1", 206, True),
        ("collector", 90, False),
        ("alice-1", 22, False),
    ]
    assert ages[2].due_in_days == 0
    assert ages[0].as_dict()["created_on"] is None


def _rotating(expires: int | None) -> Configuration:
    return Configuration(
        name="alice-1",
        account="alice",
        public_key=NEW,
        psk_ref="psk:alice-1.1",
        addresses={"node1": ipaddress.IPv4Address("198.19.1.2")},
        previous_public_key=OLD,
        previous_psk_ref="psk:alice-1",
        previous_key_expires=expires,
    )


def test_a_key_in_grace_is_held_beside_its_successor() -> None:
    peers = desired_peers("node1", [_rotating(1000)], now=999)
    assert {(p.public_key, str(p.allowed_ip), p.psk_ref, p.takes_over_from) for p in peers} == {
        (OLD, "198.19.1.2/32", "psk:alice-1", None),
        (NEW, "198.19.1.2/32", "psk:alice-1.1", OLD),
    }
    request = render_request(
        "apply", "wg0", peers, {"psk:alice-1": "A" * 43 + "=", "psk:alice-1.1": "B" * 43 + "="}
    )
    assert request.splitlines()[-2:] == [f"handover {OLD} {NEW}", "end"]


def test_after_the_grace_only_the_new_key_is_held() -> None:
    peers = desired_peers("node1", [_rotating(1000)], now=1000)
    assert [(p.public_key, p.takes_over_from) for p in peers] == [(NEW, None)]


def rotating_node1(**fields: Any) -> Node:
    """node1 in a key overlap: OLD still its key, NEW the next one."""
    return Node(
        "node1",
        "198.18.0.10",
        ipaddress.IPv4Network("198.19.1.0/24"),
        public_key=OLD,
        next_public_key=NEW,
        **fields,
    )


def test_new_client_configs_name_the_next_node_key_during_an_overlap() -> None:
    node = rotating_node1(next_listen_port=51821)
    text = render_client_config(
        private_key=OLD, address=ipaddress.IPv4Address("198.19.1.2"), node=node, preshared_key=None
    )
    assert f"PublicKey = {NEW}" in text and "Endpoint = 198.18.0.10:51821" in text


def test_counters_with_an_overlap_section() -> None:
    report = parse_counters(f"epoch e1\n{OLD}\t1\t2\ninterface wg0n\nepoch e2\n{OLD}\t5\t6\n")
    assert report.epoch == "e1" and [s.rx_bytes for s in report.samples] == [1]
    assert report.overlap_interface == "wg0n"
    assert report.overlap is not None and report.overlap.epoch == "e2"
    assert [(s.public_key, s.rx_bytes, s.tx_bytes) for s in report.overlap.samples] == [(OLD, 5, 6)]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("epoch e1\ninterface wg0n\n", "bad overlap section"),
        (f"epoch e1\ninterface wg0n\n{OLD}\t1\t2\n", "expected 'epoch TOKEN'"),
        ("epoch e1\ninterface a\nepoch e2\ninterface b\nepoch e3\n", "more than one overlap"),
    ],
    # Fixed ids: OLD is a fresh key per process, and the suite's workers must collect alike.
    ids=["no-epoch", "peer-before-epoch", "two-overlaps"],
)
def test_bad_overlap_sections_reject_the_whole_answer(text: str, error: str) -> None:
    with pytest.raises(CounterParseError, match=error):
        parse_counters(text)


def test_push_answer_with_removals_on_the_overlap_interface() -> None:
    answer = parse_answer(
        f"epoch e1\nremoved {OLD} 10 20\ninterface wg0n\nepoch e2\nremoved {OLD} 3 4\n"
        "summary interface=up added=0 changed=0 removed=1 unchanged=0 static=0 elapsed_ms=1\nok\n"
    )
    assert [(r.rx_bytes, r.tx_bytes) for r in answer.removed] == [(10, 20)]
    assert answer.overlap is not None and answer.overlap.epoch == "e2"
    assert [(r.rx_bytes, r.tx_bytes) for r in answer.overlap.removed] == [(3, 4)]


def test_node_key_checks_compare_live_keys_with_the_store_and_the_policy() -> None:
    from orchestrator.core.keys import live_public_keys, node_key_checks

    node = rotating_node1(key_created_on=date(2026, 1, 1))
    live = live_public_keys(f"wg0 {OLD}\nwg0n {NEW}\n")
    checks = {c.check: c for c in node_key_checks("node1", node, live, 180, date(2026, 11, 23))}
    assert checks["wireguard.key_matches_store"].passed
    assert not checks["wireguard.key_age"].passed
    assert "326 days old, at most 180" in checks["wireguard.key_age"].evidence
    drifted = node_key_checks("node1", node, {"wg0": NEW}, 400, date(2026, 11, 23))
    assert [c.passed for c in drifted] == [False, True]
    assert "wg0n holds nothing" in drifted[0].evidence
    assert not node_key_checks("node9", None, {}, 180, date(2026, 11, 23))[0].passed


def test_collector_check_allows_the_second_key_of_a_rotation_only() -> None:
    from orchestrator.core.audit import Probe, evaluate
    from orchestrator.core.audit_access import ControllerKeys, ExpectedKeys
    from tests.unit.access_samples import (
        COLLECTOR_ANSWER,
        COLLECTOR_KEY,
        INTRUDER_KEY,
        KEYS,
        NEXT_KEY,
    )

    path = "/var/lib/wgcollect/.ssh/authorized_keys"
    forced = 'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters"'
    rotating = ControllerKeys(
        {**KEYS.by_purpose, "collector": ExpectedKeys.from_lines([COLLECTOR_KEY], [NEXT_KEY])}
    )

    def passed(*extra: str) -> bool:
        lines = "".join(f"key\t{path}\t{n}\t{forced} {k}\n" for n, k in enumerate(extra, 2))
        probes = {"access_wgcollect": Probe(0, COLLECTOR_ANSWER + lines)}
        checks = evaluate("node1", probes, rotating)
        return all(c.passed for c in checks if c.check == "access.wgcollect.authorized_keys")

    assert passed() and passed(NEXT_KEY)
    assert not passed(NEXT_KEY, INTRUDER_KEY)
    assert not passed(INTRUDER_KEY)
