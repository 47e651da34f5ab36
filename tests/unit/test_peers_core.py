from __future__ import annotations

import ipaddress

import pytest

from orchestrator.adapters.wgkeys import new_keypair, new_preshared_key, public_key_of
from orchestrator.core.models import Configuration, DisabledReason, Node
from orchestrator.core.peers import (
    PoolExhausted,
    allocate_address,
    desired_peers,
    next_name,
    render_client_config,
    valid_key,
)
from orchestrator.core.push_protocol import PushProtocolError, parse_answer, render_request
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
    ]:
        with pytest.raises(PushProtocolError, match=message):
            parse_answer(bad)
