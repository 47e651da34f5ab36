from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from orchestrator.adapters.wgkeys import new_keypair, new_preshared_key, public_key_of
from orchestrator.core.models import Configuration, DisabledReason, Node
from orchestrator.core.peers import (
    PoolExhausted,
    allocate_address,
    desired_peers,
    next_name,
    peer_delta,
    render_client_config,
    valid_key,
)
from orchestrator.core.push_protocol import (
    PushProtocolError,
    parse_answer,
    render_delta_request,
    render_request,
)
from orchestrator.core.wgquick import parse_wg_quick

A = ipaddress.IPv4Address
POOL = ipaddress.IPv4Network("198.19.1.0/24")


def test_keys_are_wireguard_keys_and_the_private_half_stays_out_of_repr() -> None:
    pair = new_keypair()
    assert valid_key(pair.private_key) and valid_key(pair.public_key)
    assert public_key_of(pair.private_key) == pair.public_key
    assert pair.private_key not in repr(pair)
    assert valid_key(new_preshared_key())
    assert not valid_key("abc=") and not valid_key("A" * 43 + "!")


def test_allocation_takes_the_lowest_free_address_and_never_the_nodes() -> None:
    assert allocate_address(POOL, []) == A("198.19.1.2")
    assert allocate_address(POOL, [A("198.19.1.2"), A("198.19.1.4")]) == A("198.19.1.3")
    tiny = ipaddress.IPv4Network("198.19.9.0/30")
    assert allocate_address(tiny, []) == A("198.19.9.2")
    with pytest.raises(PoolExhausted, match=r"198\.19\.9\.0/30 is full"):
        allocate_address(tiny, [A("198.19.9.2")])


def test_names_count_up_per_account() -> None:
    assert next_name("alice", []) == "alice-1"
    assert next_name("alice", ["alice-1", "alice-3"]) == "alice-2"


def config(name: str, key: str, enabled: bool = True, **addresses: str) -> Configuration:
    return Configuration(
        name,
        "alice",
        key,
        f"psk:{name}",
        {n: A(a) for n, a in addresses.items()},
        enabled=enabled,
        disabled_reason=None if enabled else DisabledReason.OPERATOR,
    )


def test_a_node_holds_exactly_its_enabled_configurations() -> None:
    k1, k2, k3 = (new_keypair().public_key for _ in range(3))
    configs = [
        config("a-1", k1, node1="198.19.1.2", node2="198.19.2.2"),
        config("a-2", k2, enabled=False, node1="198.19.1.3"),
        config("a-3", k3, node2="198.19.2.3"),
    ]
    assert [(p.public_key, str(p.allowed_ip)) for p in desired_peers("node1", configs)] == [
        (k1, "198.19.1.2/32")
    ]
    assert {p.public_key for p in desired_peers("node2", configs)} == {k1, k3}
    assert desired_peers("node3", configs) == []


def test_client_config_is_valid_wg_quick_for_the_node() -> None:
    pair, node_pair, psk = new_keypair(), new_keypair(), new_preshared_key()
    node = Node("node1", "198.18.0.10", POOL, 51820, public_key=node_pair.public_key)
    text = render_client_config(
        private_key=pair.private_key, address=A("198.19.1.2"), node=node, preshared_key=psk
    )
    parsed = parse_wg_quick(text)
    assert [str(a) for a in parsed.addresses] == ["198.19.1.2/32"]
    assert parsed.peers[0].get("publickey") == node_pair.public_key
    assert parsed.peers[0].get("endpoint") == "198.18.0.10:51820"
    assert parsed.peers[0].get("presharedkey") == psk
    with pytest.raises(ValueError, match="no public key yet"):
        render_client_config(
            private_key=pair.private_key,
            address=A("198.19.1.2"),
            node=Node("node2", "198.18.0.11", POOL),
            preshared_key=None,
        )


def test_push_request_carries_the_whole_set_and_answers_parse_strictly() -> None:
    k1, k2 = new_keypair().public_key, new_keypair().public_key
    peers = desired_peers(
        "node1", [config("a-1", k1, node1="198.19.1.2"), config("a-2", k2, node1="198.19.1.3")]
    )
    request = render_request("apply", "wg0", peers, {"psk:a-1": "PSK1", "psk:a-2": "PSK2"})
    assert request.splitlines()[0] == "wgfleet-peers 1" and request.splitlines()[-1] == "end"
    assert f"peer {k1} 198.19.1.2/32 PSK1" in request
    answer = parse_answer(
        f"epoch 3f2a\nremoved {k2} 100 200\nadded {k1}\n"
        "summary interface=up added=1 changed=0 removed=1 unchanged=5 static=0\nok\n"
    )
    assert answer.interface_up and answer.added == (k1,) and answer.unchanged == 5
    assert answer.removed[0].rx_bytes == 100 and answer.changes == 2
    for bad, message in [
        ("error line 3: bad preshared key\n", "line 3: bad preshared key"),
        ("epoch x\nsummary interface=up\nendpoint 1.2.3.4:5\nok\n", "line 3 not understood"),
        ("epoch x\nok\n", "lacks an epoch or a summary"),
        # A node's numbers are ASCII digits within 64 bits: a bad one fails that node's push,
        # never the whole run with another exception.
        (f"epoch x\nremoved {k2} \u0661\u0662 2\nsummary a=1\nok\n", "line 2: removed peer's rx"),
        (f"epoch x\nremoved {k2} 1 \uff12\nsummary a=1\nok\n", "line 2: removed peer's tx"),
        (f"epoch x\nremoved {k2} {2**63} 2\nsummary a=1\nok\n", "rx '9223372036854775808'"),
        (f"epoch x\nremoved {k2} {'9' * 5000} 2\nsummary a=1\nok\n", "is not a count"),
        ("epoch x\nsummary interface=up unchanged=many\nok\n", "summary unchanged 'many'"),
        ("epoch x\nsummary interface=up elapsed_ms=-1\nok\n", "summary elapsed_ms '-1'"),
    ]:
        with pytest.raises(PushProtocolError, match=message):
            parse_answer(bad)


def test_a_full_request_names_its_revision_only_when_given() -> None:
    peers = desired_peers("node1", [config("a-1", new_keypair().public_key, node1="198.19.1.2")])
    assert "revision 7" in render_request("apply", "wg0", peers, {"psk:a-1": "P"}, 7).splitlines()
    assert not any(
        line.startswith("revision")
        for line in render_request("apply", "wg0", peers, {"psk:a-1": "P"}).splitlines()
    )


def test_a_delta_holds_what_a_change_enabled_and_drops_what_it_disabled_or_removed() -> None:
    k1, k2, k3, k4 = (new_keypair().public_key for _ in range(4))
    a1 = config("a-1", k1, node1="198.19.1.2", node2="198.19.2.2")
    a2 = config("a-2", k2, enabled=False, node1="198.19.1.3")
    a3 = config("a-3", k3, node1="198.19.1.4")
    a4 = config("a-4", k4, node2="198.19.2.4")
    disabled_a1 = replace(a1, enabled=False, disabled_reason=DisabledReason.OPERATOR)
    enabled_a2 = replace(a2, enabled=True, disabled_reason=None)
    # One change: a-1 disabled, a-2 enabled, a-3 removed, a-4 added (on node2 only).
    delta = peer_delta("node1", [a1, a2, a3], [disabled_a1, enabled_a2, a4])
    assert delta is not None
    assert [(p.public_key, str(p.allowed_ip), p.psk_ref) for p in delta.hold] == [
        (k2, "198.19.1.3/32", "psk:a-2")
    ]
    assert set(delta.drop) == {k1, k3}
    on_node2 = peer_delta("node2", [a1, a2, a3], [disabled_a1, enabled_a2, a4])
    assert on_node2 is not None and on_node2.drop == (k1,)
    assert [p.public_key for p in on_node2.hold] == [k4]
    # A disabled configuration whose reason changed: nothing for the node.
    over = replace(a2, disabled_reason=DisabledReason.OVER_QUOTA)
    reason_only = peer_delta("node1", [a2], [over])
    assert reason_only is not None and reason_only.empty
    assert peer_delta("node3", [a1], [disabled_a1]) == reason_only  # not placed there


def test_no_delta_for_a_configuration_rotating_its_key() -> None:
    old, new = new_keypair().public_key, new_keypair().public_key
    rotating = replace(
        config("a-1", new, node1="198.19.1.2"),
        previous_public_key=old,
        previous_psk_ref="psk:a-1.old",
        previous_key_expires=2_000_000_000,
    )
    disabled = replace(rotating, enabled=False, disabled_reason=DisabledReason.OPERATOR)
    assert peer_delta("node1", [rotating], [disabled], now=1_000_000_000) is None
    assert peer_delta("node1", [], [rotating]) is None


def test_a_delta_request_names_base_revision_holds_and_drops() -> None:
    k1, k2 = new_keypair().public_key, new_keypair().public_key
    delta = peer_delta(
        "node1",
        [config("a-2", k2, node1="198.19.1.3")],
        [config("a-1", k1, node1="198.19.1.2")],
    )
    assert delta is not None
    request = render_delta_request("apply", "wg0", 41, 42, delta, {"psk:a-1": "PSK1"})
    assert request.splitlines() == [
        "wgfleet-peers 1",
        "mode apply",
        "interface wg0",
        "base 41",
        "revision 42",
        f"peer {k1} 198.19.1.2/32 PSK1",
        f"remove {k2}",
        "end",
    ]
    with pytest.raises(ValueError, match="mode"):
        render_delta_request("sync", "wg0", 41, 42, delta, {"psk:a-1": "PSK1"})


def test_a_resync_answer_changes_nothing_and_parses_strictly() -> None:
    answer = parse_answer("resync node holds revision 40, not 41\nok\n")
    assert answer.resync == "node holds revision 40, not 41"
    assert answer.changes == 0 and not answer.delta
    delta = parse_answer(
        "epoch e\nsummary interface=up added=0 changed=0 removed=0 unchanged=9 kind=delta\nok\n"
    )
    assert delta.delta and not delta.resync and delta.unchanged == 9
    for bad in ("resync \nok\n", "resync x\nepoch e\nok\n"):
        with pytest.raises(PushProtocolError, match="resync answer"):
            parse_answer(bad)
