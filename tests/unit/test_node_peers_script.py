"""The node's `wgfleet-peers` entry point (roles/peers_access/files/wgfleet-peers), run here as
the plain program it is, with a test config (tests/unit/peers_node.py).

With no such interface on this machine the script takes its `interface down` path: it still
checks the request whole, plans from an empty live set, and in apply mode persists the desired
set for the next interface start. Its live paths (snapshot, rollback, the watch's routes) run
against a fake node here and against real lab nodes in tests/integration.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.adapters.wgkeys import new_keypair, new_preshared_key
from orchestrator.core.push_protocol import parse_answer
from tests.unit.peers_node import (
    SCRIPT,
    FakeNode,
    clean_environment,
    peers_config,
    run_script,
    write_config,
)

HEAD = "wgfleet-peers 1\nmode apply\ninterface wgt9\n"


@pytest.fixture
def script(tmp_path: Path) -> tuple[Path, Path]:
    """(config file, wireguard directory) of a node whose interface wgt9 is down."""
    (tmp_path / "wireguard").mkdir()
    config = write_config(tmp_path / "peers.json", peers_config(tmp_path))
    return config, tmp_path / "wireguard"


def run(config: Path, request: str | bytes, *args: str) -> subprocess.CompletedProcess[str]:
    return run_script(config, request, *args)


def key() -> str:
    return new_keypair().public_key


def test_apply_with_the_interface_down_persists_the_desired_set(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    k1, k2, psk = key(), key(), new_preshared_key()
    request = f"{HEAD}peer {k1} 198.19.1.2/32 {psk}\npeer {k2} 198.19.1.3/32 -\nend\n"
    result = run(path, request)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = parse_answer(result.stdout)
    assert not answer.interface_up and answer.epoch == "none"
    assert set(answer.added) == {k1, k2}
    persisted = wg_dir / "wgt9.peers"
    assert persisted.stat().st_mode & 0o777 == 0o600
    text = persisted.read_text()
    assert f"PublicKey = {k1}\nPresharedKey = {psk}\nAllowedIPs = 198.19.1.2/32" in text
    assert f"PublicKey = {k2}\nAllowedIPs = 198.19.1.3/32" in text


def test_plan_changes_nothing(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    k1 = key()
    result = run(
        path, f"wgfleet-peers 1\nmode plan\ninterface wgt9\npeer {k1} 198.19.1.2/32 -\nend\n"
    )
    assert parse_answer(result.stdout).added == (k1,)
    assert not (wg_dir / "wgt9.peers").exists()


# Each request the node must refuse whole, with the one line it answers. {k}, {j}, {m}: keys.
REFUSED = [
    ("mode apply\ninterface wgt9\nend\n", "expected header 'wgfleet-peers 1'"),
    ("wgfleet-peers 1\nmode apply\ninterface wgt9\n", "request truncated: no 'end' line"),
    ("wgfleet-peers 1\ninterface wgt9\nend\n", "request lacks a mode or an interface"),
    # Interfaces other than the managed one, and its overlap twin named directly.
    (
        "wgfleet-peers 1\nmode apply\ninterface wg0;reboot\nend\n",
        "line 3: interface 'wg0;reboot' is not managed here (managed: wgt9)",
    ),
    (
        "wgfleet-peers 1\nmode apply\ninterface eth0\nend\n",
        "line 3: interface 'eth0' is not managed here (managed: wgt9)",
    ),
    (
        "wgfleet-peers 1\nmode apply\ninterface lo\nend\n",
        "line 3: interface 'lo' is not managed here (managed: wgt9)",
    ),
    (
        "wgfleet-peers 1\nmode apply\ninterface wgt9n\nend\n",
        "line 3: interface 'wgt9n' is the overlap twin of wgt9: name wgt9, the push changes both",
    ),
    # Addresses: only single hosts of the tunnel network, never its edges or the node's own.
    (
        f"{HEAD}peer {{k}} 0.0.0.0/0 -\nend\n",
        "line 4: address '0.0.0.0/0' is not a single host address (/32)",
    ),
    (
        f"{HEAD}peer {{k}} 198.18.0.0/15 -\nend\n",
        "line 4: address '198.18.0.0/15' is not a single host address (/32)",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.0/24 -\nend\n",
        "line 4: address '198.19.1.0/24' is not a single host address (/32)",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.2/24 -\nend\n",
        "line 4: address '198.19.1.2/24' is not a single host address (/32)",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.128/25 -\nend\n",
        "line 4: address '198.19.1.128/25' is not a single host address (/32)",
    ),
    (
        f"{HEAD}peer {{k}} 198.18.0.11/32 -\nend\n",
        "line 4: address '198.18.0.11/32' is outside the node's IPv4 tunnel networks "
        "(198.19.1.0/24)",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.2.5/32 -\nend\n",
        "line 4: address '198.19.2.5/32' is outside the node's IPv4 tunnel networks "
        "(198.19.1.0/24)",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.1/32 -\nend\n",
        "line 4: address '198.19.1.1/32' is this node's own tunnel address",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.0/32 -\nend\n",
        "line 4: address '198.19.1.0/32' is the tunnel network's own address",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.255/32 -\nend\n",
        "line 4: address '198.19.1.255/32' is the tunnel network's broadcast address",
    ),
    (
        f"{HEAD}peer {{k}} 198.019.1.2/32 -\nend\n",
        "line 4: address '198.019.1.2/32' is not an IPv4 /32 or IPv6 /128",
    ),
    (
        f"{HEAD}peer {{k}} ::/0 -\nend\n",
        "line 4: address '::/0' is not a single host address (/128)",
    ),
    (
        f"{HEAD}peer {{k}} fd00:198:19:1::2/128 -\nend\n",
        "line 4: address 'fd00:198:19:1::2/128' is outside the node's IPv6 tunnel networks (none)",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32,198.19.1.3/32 -\nend\n",
        "line 4: more than one IPv4 address ('198.19.1.2/32,198.19.1.3/32')",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32,0.0.0.0/0 -\nend\n",
        "line 4: address '0.0.0.0/0' is not a single host address (/32)",
    ),
    (f"{HEAD}peer {{k}} , -\nend\n", "line 4: address '' is not an IPv4 /32 or IPv6 /128"),
    # Two peers claiming one address, outside a handover pair.
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32 -\npeer {{j}} 198.19.1.2/32 -\nend\n",
        "line 5: address 198.19.1.2/32 is already claimed by the peer on line 4",
    ),
    # A handover crafted to take a third peer's address, or not a pair at all.
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32 -\npeer {{j}} 198.19.1.2/32 -\n"
        f"peer {{m}} 198.19.1.2/32 -\nhandover {{k}} {{j}}\nend\n",
        "line 6: address 198.19.1.2/32 is already claimed by the peer on line 4",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32 -\npeer {{j}} 198.19.1.3/32 -\nhandover {{k}} {{j}}\nend\n",
        "line 6: a handover names two listed peers with the same networks",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32 -\nhandover {{k}} {{k}}\nend\n",
        "line 5: a handover names two listed peers with the same networks",
    ),
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32 -\npeer {{j}} 198.19.1.2/32 -\n"
        f"peer {{m}} 198.19.1.2/32 -\nhandover {{k}} {{j}}\nhandover {{j}} {{m}}\nend\n",
        "line 8: a key in two handovers",
    ),
    # Keys.
    (f"{HEAD}peer nokey 198.19.1.2/32 -\nend\n", "line 4: malformed public key"),
    (
        f"{HEAD}peer {{k}} 198.19.1.2/32 -\npeer {{k}} 198.19.1.3/32 -\nend\n",
        "line 5: public key repeated from line 4",
    ),
    (f"{HEAD}peer {{k}} 198.19.1.2/32 $(id)\nend\n", "line 4: malformed preshared key"),
    # Header games.
    (
        "wgfleet-peers 1\nmode apply\nmode plan\ninterface wgt9\nend\n",
        "line 3: a second 'mode' line",
    ),
    (f"{HEAD}interface wgt9\nend\n", "line 4: a second 'interface' line"),
    (f"{HEAD}revision 3\nrevision 4\nend\n", "line 5: a second 'revision' line"),
    (
        "wgfleet-peers 1\nmode commit\ninterface wgt9\nend\n",
        "line 2: mode 'commit' is not plan or apply",
    ),
    (f"{HEAD}peer {{k}} 198.19.1.2/32 - extra\nend\n", "line 4: not understood"),
    (f"{HEAD}peer {{k}} 198.19.1.2/32 -\r\nend\n", "line 4: malformed preshared key"),
    (f"{HEAD}wgfleet-peers 1\nend\n", "line 4: not understood"),
    (f"{HEAD}end\nend\n", "line 4: not understood"),
]


@pytest.mark.parametrize(("body", "error"), REFUSED)
def test_bad_requests_are_refused_whole(script: tuple[Path, Path], body: str, error: str) -> None:
    path, wg_dir = script
    result = run(path, body.format(k=key(), j=key(), m=key()))
    assert (result.returncode, result.stdout, result.stderr) == (2, f"error {error}\n", "")
    assert list(wg_dir.iterdir()) == []


def test_a_request_that_is_not_ascii_is_refused(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    peer = f"{HEAD}peer {key()} 198.19.1.2/32 -\nend\n"
    for body in (peer.replace("198", "\uff11\uff19\uff18"), peer.replace("wgt9", "wgt9\u202e")):
        result = run(path, body.encode())
        assert result.stdout == "error the request is not ASCII\n"
    result = run(path, peer.replace("peer ", "peer \0"))
    assert result.stdout == "error line 4: malformed public key\n"
    assert list(wg_dir.iterdir()) == []


def test_ipv6_host_addresses_of_a_configured_network(tmp_path: Path) -> None:
    (tmp_path / "wireguard").mkdir()
    config = write_config(
        tmp_path / "peers.json",
        peers_config(
            tmp_path,
            tunnel_networks={"ipv4": ["198.19.1.0/24"], "ipv6": ["fd00:198:19:1::/64"]},
            tunnel_addresses={"ipv4": ["198.19.1.1"], "ipv6": ["fd00:198:19:1::1"]},
        ),
    )
    k1 = key()
    both = "fd00:198:19:1:0:0:0:2/128,198.19.1.2/32"
    result = run(config, f"{HEAD}peer {k1} {both} -\nend\n")
    assert result.returncode == 0, result.stdout
    text = (tmp_path / "wireguard" / "wgt9.peers").read_text()
    assert "AllowedIPs = 198.19.1.2/32,fd00:198:19:1::2/128" in text
    for address, problem in [
        ("fd00:198:19:1::1/128", "is this node's own tunnel address"),
        ("fd00:198:19:1::/128", "is the tunnel network's own address"),
        ("fd00:198:19:2::5/128", "is outside the node's IPv6 tunnel networks (fd00:198:19:1::/64)"),
        ("fd00:198:19:1::/64", "is not a single host address (/128)"),
    ]:
        result = run(config, f"{HEAD}peer {k1} {address} -\nend\n")
        assert result.stdout == f"error line 4: address '{address}' {problem}\n"
    result = run(config, f"{HEAD}peer {k1} fd00:198:19:1::2/128,fd00:198:19:1::3/128 -\nend\n")
    assert result.stdout.startswith("error line 4: more than one IPv6 address")


# --- bounds ----------------------------------------------------------------------------------


def peer_lines(count: int, first: int = 2) -> str:
    return "".join(f"peer {key()} 198.19.1.{first + i}/32 -\n" for i in range(count))


def test_more_peers_than_the_bound_are_refused(tmp_path: Path) -> None:
    (tmp_path / "wireguard").mkdir()
    config = write_config(tmp_path / "peers.json", peers_config(tmp_path, max_peers=5))
    assert run(config, f"{HEAD}{peer_lines(5)}end\n").returncode == 0
    result = run(config, f"{HEAD}{peer_lines(6)}end\n")
    assert result.stdout == "error line 9: more than 5 peers\n"
    removes = "".join(f"remove {key()}\n" for _ in range(3))
    result = run(config, f"{HEAD}base 1\nrevision 2\n{peer_lines(3)}{removes}end\n")
    assert result.stdout == "error line 11: more than 5 peers\n"


def test_a_line_over_the_bound_is_refused(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    # One peer with a thousand networks: refused by its length before any is parsed.
    many = ",".join(f"198.19.1.{2 + i % 250}/32" for i in range(1000))
    result = run(path, f"{HEAD}peer {key()} {many} -\nend\n")
    assert result.stdout == "error line 4: longer than 512 bytes\n"
    assert list(wg_dir.iterdir()) == []


def test_reading_stops_at_a_line_over_the_bound(tmp_path: Path) -> None:
    """A line longer than the bound ends the reading there, before the request's byte bound."""
    (tmp_path / "wireguard").mkdir()
    config = write_config(
        tmp_path / "peers.json", peers_config(tmp_path, max_request_bytes=1 << 20)
    )
    many = ",".join(["198.19.1.2/32"] * 20000)  # 280 kB, one line
    result = run(config, f"{HEAD}peer {key()} {many} -\nend\n")
    assert result.stdout == "error line 4: longer than 512 bytes\n"


def start_script(config: Path) -> subprocess.Popen[bytes]:
    """The node program reading ``config``, its stdin and stdout pipes held by the test."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=clean_environment(WGFLEET_PEERS_CONFIG=str(config)),
    )
    assert process.stdin is not None and process.stdout is not None
    return process


def test_reading_stops_at_the_byte_bound(script: tuple[Path, Path]) -> None:
    """An endless request: the node answers once it has read the bound, and reads no more."""
    path, _ = script
    process = start_script(path)
    line = f"peer {key()} 198.19.1.2/32 -\n".encode()
    sent = 0

    def feed() -> None:
        nonlocal sent
        assert process.stdin is not None
        try:
            process.stdin.write(HEAD.encode())
            while sent < 64 << 20:  # 64 MiB: a thousand times the bound
                process.stdin.write(line * 100)
                sent += len(line) * 100
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed)
    writer.start()
    answer = process.stdout.read().decode()
    writer.join()
    process.wait()
    assert answer == "error the request exceeds 65536 bytes\n"
    assert process.returncode == 2
    assert sent < 4 << 20, f"the node kept reading: {sent} bytes sent"


def test_a_request_that_never_ends_is_refused_at_the_timeout(tmp_path: Path) -> None:
    (tmp_path / "wireguard").mkdir()
    config = write_config(
        tmp_path / "peers.json", peers_config(tmp_path, request_timeout_seconds=1)
    )
    process = start_script(config)
    process.stdin.write(HEAD.encode())
    process.stdin.flush()  # and the input stays open: the answer comes when the node gives up
    out = process.stdout.read()
    process.stdin.close()
    assert out.decode() == "error the request did not arrive in time\n"
    assert process.wait() == 2


# --- the config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"interfaces": []}, "interfaces: []: not a non-empty list"),
        (
            {"interfaces": ["wg0", "wg0n"]},
            "interfaces: 'wg0': listed twice or with its overlap twin",
        ),
        (
            {"interfaces": ["wg0;x"]},
            "interfaces: 'wg0;x': not an interface name of 1-14 characters",
        ),
        (
            {"tunnel_networks": {"ipv4": ["0.0.0.0/0"], "ipv6": []}},
            "tunnel_networks.ipv4: '0.0.0.0/0': not an IPv4 network from /8 to /30",
        ),
        (
            {"tunnel_networks": {"ipv4": ["198.19.1.1/24"], "ipv6": []}},
            "tunnel_networks.ipv4: '198.19.1.1/24': not an IPv4 network from /8 to /30",
        ),
        (
            {"tunnel_networks": {"ipv4": [], "ipv6": []}},
            'tunnel_networks: {"ipv4": [], "ipv6": []}: no network at all',
        ),
        (
            {"tunnel_addresses": {"ipv4": ["198.19.2.1"], "ipv6": []}},
            "tunnel_addresses.ipv4: '198.19.2.1': is outside the node's IPv4 tunnel networks "
            "(198.19.1.0/24)",
        ),
        (
            {"tunnel_networks": {"ipv4": ["198.19.1.0/24"], "ipv6": ["::/0"]}},
            "tunnel_networks.ipv6: '::/0': not an IPv6 network from /32 to /126",
        ),
        (
            {"tunnel_networks": ["198.19.1.0/24"]},
            'tunnel_networks: ["198.19.1.0/24"]: not an object',
        ),
        ({"max_peers": 0}, "max_peers: 0: not a whole number from 1 to 1000000"),
        ({"max_peers": True}, "max_peers: true: not a whole number from 1 to 1000000"),
        ({"max_request_bytes": "16M"}, "max_request_bytes: '16M': not a whole number from"),
        ({"wireguard_dir": "etc/wireguard"}, "wireguard_dir: 'etc/wireguard': not an absolute"),
        ({"extra": 1}, "extra: 1: unknown field"),
    ],
)
def test_a_bad_config_refuses_every_request(
    tmp_path: Path, change: dict[str, Any], error: str
) -> None:
    config = write_config(tmp_path / "peers.json", peers_config(tmp_path, **change))
    result = run(config, f"{HEAD}end\n")
    assert result.returncode == 2
    assert result.stdout.startswith(f"error config {config}: {error}"), result.stdout
    assert result.stdout.count("\n") == 1
    checked = run(config, "", "--check-config", str(config))
    assert (checked.returncode, checked.stdout) == (2, result.stdout)


def test_a_config_anyone_else_could_write_or_a_link_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "peers.json", peers_config(tmp_path))
    assert run(config, "", "--check-config", str(config)).returncode == 0
    config.chmod(0o664)
    result = run(config, f"{HEAD}end\n")
    assert result.stdout == f"error config {config}: writable by group or others (mode 0664)\n"
    config.chmod(0o644)
    link = tmp_path / "link.json"
    link.symlink_to(config)
    result = run(link, f"{HEAD}end\n")
    assert result.stdout.startswith(f"error config {link}: cannot be read: ")
    missing = tmp_path / "missing.json"
    assert run(missing, f"{HEAD}end\n").stdout.startswith(f"error config {missing}: cannot be read")
    (tmp_path / "broken.json").write_text("{")
    assert run(tmp_path / "broken.json", "").stdout.startswith("error config ")


def test_through_sudo_no_argument_and_no_other_config_is_accepted(tmp_path: Path) -> None:
    config = write_config(tmp_path / "peers.json", peers_config(tmp_path))
    env = clean_environment(WGFLEET_PEERS_CONFIG=str(config), SUDO_UID="999")
    for args in (["--watch", "wgt9"], ["--check-config", str(config)]):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.stdout == "error no arguments are accepted through sudo\n"
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], input=f"{HEAD}end\n", env=env, capture_output=True, text=True
    )
    # The deployed config, not the one named in the environment (absent on this machine, or
    # this machine's own).
    assert "/etc/wgfleet/peers.json" in done.stdout or done.stdout.endswith("ok\n")
    assert str(config) not in done.stdout


# --- handovers and deltas (interface down) ---------------------------------------------------


def test_a_handover_keeps_the_address_on_the_old_key_until_the_new_one_is_used(
    script: tuple[Path, Path],
) -> None:
    path, wg_dir = script
    old, new = key(), key()
    psk_old, psk_new = new_preshared_key(), new_preshared_key()
    request = (
        f"{HEAD}peer {old} 198.19.1.2/32 {psk_old}\npeer {new} 198.19.1.2/32 {psk_new}\n"
        f"handover {old} {new}\nend\n"
    )
    result = run(path, request)
    assert result.returncode == 0, result.stdout + result.stderr
    blocks = (wg_dir / "wgt9.peers").read_text().split("[Peer]")[1:]
    by_key = {b.split("PublicKey = ")[1].split()[0]: b for b in blocks}
    assert "AllowedIPs = 198.19.1.2/32" in by_key[old]
    assert "AllowedIPs" not in by_key[new] and f"PresharedKey = {psk_new}" in by_key[new]
    handover = wg_dir / "wgt9.handover"
    assert handover.read_text() == f"{old} {new}\n"
    assert handover.stat().st_mode & 0o777 == 0o600
    # The grace ended: only the new key is asked for, and the pending handover goes.
    result = run(path, f"{HEAD}peer {new} 198.19.1.2/32 {psk_new}\nend\n")
    assert result.returncode == 0, result.stdout
    assert not handover.exists()
    assert "AllowedIPs = 198.19.1.2/32" in (wg_dir / "wgt9.peers").read_text()


def full_request(peers: dict[str, tuple[str, str]], revision: int | None) -> str:
    lines = ["wgfleet-peers 1", "mode apply", "interface wgt9"]
    if revision is not None:
        lines.append(f"revision {revision}")
    lines += [f"peer {k} {net} {psk}" for k, (net, psk) in peers.items()]
    return "\n".join([*lines, "end"]) + "\n"


def delta_request(
    base: int, revision: int, hold: dict[str, tuple[str, str]], drop: list[str]
) -> str:
    lines = ["wgfleet-peers 1", "mode apply", "interface wgt9", f"base {base}"]
    lines.append(f"revision {revision}")
    lines += [f"peer {k} {net} {psk}" for k, (net, psk) in hold.items()]
    lines += [f"remove {k}" for k in drop]
    return "\n".join([*lines, "end"]) + "\n"


def persisted(wg_dir: Path) -> tuple[dict[str, tuple[str, str]], str]:
    """The .peers file as key -> (networks, psk or '-'), and its revision line."""
    text = (wg_dir / "wgt9.peers").read_text()
    peers = {}
    for block in text.split("[Peer]")[1:]:
        fields = dict(line.split(" = ", 1) for line in block.strip().splitlines())
        peers[fields["PublicKey"]] = (fields.get("AllowedIPs", ""), fields.get("PresharedKey", "-"))
    revision = next((line for line in text.splitlines() if line.startswith("# revision")), "")
    return peers, revision


def some_peers(count: int, first: int = 2) -> dict[str, tuple[str, str]]:
    return {key(): (f"198.19.1.{first + i}/32", new_preshared_key()) for i in range(count)}


def applied(path: Path, count: int, revision: int) -> dict[str, tuple[str, str]]:
    """``count`` new peers applied as a full set recorded at ``revision``: where a delta
    starts from."""
    peers = some_peers(count)
    assert run(path, full_request(peers, revision)).returncode == 0
    return peers


def test_a_delta_applies_on_the_revision_it_names_and_records_the_next(
    script: tuple[Path, Path],
) -> None:
    path, wg_dir = script
    peers = applied(path, 5, revision=41)
    assert persisted(wg_dir) == (peers, "# revision 41")
    keys = list(peers)
    new = some_peers(1, first=50)
    changed = {keys[1]: ("198.19.1.60/32", peers[keys[1]][1])}
    result = run(path, delta_request(41, 42, {**new, **changed}, [keys[0], keys[2]]))
    assert result.returncode == 0, result.stdout + result.stderr
    answer = parse_answer(result.stdout)
    assert answer.delta and not answer.resync
    assert answer.added == tuple(new) and answer.changed == (keys[1],)
    assert answer.removed == ()  # the interface is down: no live peer left, no counters
    assert answer.unchanged == 2  # keys 3 and 4
    expected = {k: v for k, v in peers.items() if k not in (keys[0], keys[2])}
    assert persisted(wg_dir) == ({**expected, **new, **changed}, "# revision 42")
    # The same delta again: the node is at 42 now, not 41; nothing changes.
    again = run(path, delta_request(41, 42, new, [keys[0]]))
    assert again.stdout == "resync node holds revision 42, not 41\nok\n"
    assert parse_answer(again.stdout).resync
    assert persisted(wg_dir)[1] == "# revision 42"


def test_a_delta_may_not_take_an_address_another_peer_keeps(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    peers = applied(path, 3, revision=5)
    before = (wg_dir / "wgt9.peers").read_text()
    thief = {key(): ("198.19.1.3/32", "-")}  # the address of the second peer
    result = run(path, delta_request(5, 6, thief, []))
    assert (
        result.stdout
        == "error line 6: address 198.19.1.3/32 is held by another peer on this node\n"
    )
    # Unless that peer leaves in the same delta.
    assert (wg_dir / "wgt9.peers").read_text() == before
    result = run(path, delta_request(5, 6, thief, [list(peers)[1]]))
    assert parse_answer(result.stdout).added == tuple(thief)


@pytest.mark.parametrize("revision", [None, 40])
def test_a_delta_on_another_or_an_unknown_revision_asks_for_the_full_set(
    script: tuple[Path, Path], revision: int | None
) -> None:
    path, wg_dir = script
    peers = some_peers(3)
    assert run(path, full_request(peers, revision)).returncode == 0
    before = (wg_dir / "wgt9.peers").read_text()
    result = run(path, delta_request(41, 42, some_peers(1, first=50), list(peers)[:1]))
    assert result.returncode == 0
    held = "none" if revision is None else str(revision)
    assert result.stdout == f"resync node holds revision {held}, not 41\nok\n"
    assert (wg_dir / "wgt9.peers").read_text() == before
    # No .peers file at all (a node rebuilt): the same.
    (wg_dir / "wgt9.peers").unlink()
    result = run(path, delta_request(41, 42, {}, list(peers)[:1]))
    assert result.stdout == "resync node holds revision none, not 41\nok\n"
    assert not (wg_dir / "wgt9.peers").exists()


def test_a_delta_touching_a_pending_handover_asks_for_the_full_set_and_a_static_peer_is_refused(
    script: tuple[Path, Path],
) -> None:
    path, wg_dir = script
    old, new, other = key(), key(), key()
    psk = new_preshared_key()
    request = (
        f"{HEAD}revision 7\npeer {old} 198.19.1.2/32 {psk}\npeer {new} 198.19.1.2/32 {psk}\n"
        f"peer {other} 198.19.1.3/32 -\nhandover {old} {new}\nend\n"
    )
    assert run(path, request).returncode == 0
    result = run(path, delta_request(7, 8, {}, [old]))
    assert result.stdout == "resync a pending handover is touched\nok\n"
    # A peer outside the handover: applied, and the pending handover stays.
    result = run(path, delta_request(7, 8, {}, [other]))
    assert parse_answer(result.stdout).delta
    assert (wg_dir / "wgt9.handover").read_text() == f"{old} {new}\n"
    assert set(persisted(wg_dir)[0]) == {old, new}
    static = key()
    (wg_dir / "wgt9.conf").write_text(
        f"[Interface]\n\n[Peer]\nPublicKey = {static}\nAllowedIPs = 198.19.1.100/32\n"
    )
    before = (wg_dir / "wgt9.peers").read_text()
    result = run(path, delta_request(8, 9, {}, [static]))
    assert result.stdout == "error line 6: the public key is a static peer of wgt9.conf\n"
    result = run(path, full_request({static: ("198.19.1.9/32", "-")}, 9))
    assert result.stdout == "error line 5: the public key is a static peer of wgt9.conf\n"
    result = run(path, full_request({key(): ("198.19.1.100/32", "-")}, 9))
    assert result.stdout == (
        "error line 5: address 198.19.1.100/32 belongs to a static peer of wgt9.conf\n"
    )
    assert (wg_dir / "wgt9.peers").read_text() == before


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        ("revision 2\nremove {k}\n", "remove lines belong to a delta (base)"),
        ("base 1\nremove {k}\n", "a delta (base) needs a revision"),
        ("base 1\nrevision 2\nremove {k}\nremove {k}\n", "a delta names a peer twice"),
        (
            "base 1\nrevision 2\npeer {k} 198.19.1.2/32 -\nremove {k}\n",
            "a delta names a peer twice",
        ),
        (
            "base 1\nrevision 2\npeer {k} 198.19.1.2/32 -\npeer {j} 198.19.1.2/32 -\n"
            "handover {k} {j}\n",
            "a handover needs the whole peer set, not a delta",
        ),
        ("base 1\nrevision 3\n", "a delta moves the revision by one: base 1, revision 3"),
        ("base 2\nrevision 1\n", "a delta moves the revision by one: base 2, revision 1"),
        ("base -1\nrevision 2\n", "line 4: base '-1' is not a revision number"),
        ("base 1\nrevision 02\n", "line 5: revision '02' is not a revision number"),
        (
            "base 1\nrevision 1234567890123456789\n",
            "line 5: revision '1234567890123456789' is not a revision number",
        ),
        ("base 1\nbase 1\nrevision 2\n", "line 5: a second 'base' line"),
        ("base 1\nrevision 2\nremove nokey\n", "line 6: malformed public key"),
    ],
)
def test_bad_delta_requests_are_refused_whole(
    script: tuple[Path, Path], lines: str, error: str
) -> None:
    path, wg_dir = script
    body = HEAD + lines + "end\n"
    result = run(path, body.format(k=key(), j=key()))
    assert result.returncode == 2
    assert result.stdout == f"error {error}\n"
    assert not (wg_dir / "wgt9.peers").exists()


def test_a_full_set_without_a_revision_forgets_the_recorded_one(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    peers = applied(path, 2, revision=3)
    assert run(path, full_request(peers, None)).returncode == 0
    assert persisted(wg_dir) == (peers, "")
    result = run(path, delta_request(3, 4, {}, list(peers)))
    assert parse_answer(result.stdout).resync == "node holds revision none, not 3"


def test_the_persisted_set_reads_back_whatever_its_layout(script: tuple[Path, Path]) -> None:
    """The .peers file is read in one pass when laid out as the script writes it, else line by
    line: a hand-edited file (spacing, a comment) reads the same."""
    path, wg_dir = script
    peers = applied(path, 4, revision=5)
    text = (wg_dir / "wgt9.peers").read_text()
    k = list(peers)[2]
    edited = text.replace(f"PublicKey = {k}", f"# moved by hand\nPublicKey={k}")
    edited = edited.replace("AllowedIPs = ", "AllowedIPs=  ", 1)
    (wg_dir / "wgt9.peers").write_text(edited)
    result = run(path, delta_request(5, 6, {}, [k]))
    assert parse_answer(result.stdout).unchanged == 3
    assert persisted(wg_dir) == ({p: v for p, v in peers.items() if p != k}, "# revision 6")


def test_a_persisted_set_outside_the_tunnel_network_takes_no_delta(
    script: tuple[Path, Path],
) -> None:
    """A set written before this program checked addresses (or by hand): the full set follows."""
    path, wg_dir = script
    applied(path, 2, revision=5)
    text = (wg_dir / "wgt9.peers").read_text().replace("198.19.1.3/32", "0.0.0.0/0")
    (wg_dir / "wgt9.peers").write_text(text)
    result = run(path, delta_request(5, 6, some_peers(1, first=9), []))
    assert result.stdout == (
        "resync the persisted set is not valid: address '0.0.0.0/0' is not a single host "
        "address (/32)\nok\n"
    )
    assert (wg_dir / "wgt9.peers").read_text() == text


def test_the_handover_watch_keeps_the_recorded_revision(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    old, new = key(), key()
    request = (
        f"{HEAD}revision 12\npeer {old} 198.19.1.2/32 -\npeer {new} 198.19.1.2/32 -\n"
        f"handover {old} {new}\nend\n"
    )
    assert run(path, request).returncode == 0
    watched = run(path, "", "--watch", "wgt9")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert persisted(wg_dir)[1] == "# revision 12"
    assert (wg_dir / "wgt9.handover").exists()  # the new key was not used: still pending
    for other in ("eth0", "wgt9n"):
        assert run(path, "", "--watch", other).stdout.startswith(f"error interface '{other}'")


# --- live paths, on a fake node --------------------------------------------------------------


def live_view(node: FakeNode, *ifaces: str) -> dict[str, Any]:
    """What a test compares before and after: live peers, routes, and the wireguard files."""
    state = node.state()
    return {
        "live": {i: state["ifaces"][i] for i in ifaces},
        "files": node.files(),
    }


def fake_peer(address: str, psk: str | None = None, rx: int = 0) -> dict[str, Any]:
    return {"allowed": [address] if address else [], "psk": psk, "rx": rx, "tx": 7}


def test_a_full_push_on_a_live_interface_changes_only_what_differs(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    keep, gone, moved = key(), key(), key()
    node.up(
        "wgt9",
        {
            keep: fake_peer("198.19.1.2/32", rx=10),
            gone: fake_peer("198.19.1.3/32", rx=20),
            moved: fake_peer("198.19.1.4/32"),
        },
    )
    added, psk = key(), new_preshared_key()
    request = (
        f"{HEAD}revision 3\npeer {keep} 198.19.1.2/32 -\npeer {moved} 198.19.1.5/32 -\n"
        f"peer {added} 198.19.1.4/32 {psk}\nend\n"
    )
    result = node.run(request)
    assert result.returncode == 0, result.stdout + result.stderr
    answer = parse_answer(result.stdout)
    assert answer.interface_up and answer.added == (added,) and answer.changed == (moved,)
    assert [(r.public_key, r.rx_bytes) for r in answer.removed] == [(gone, 20)]
    live = node.peers()
    assert set(live) == {keep, moved, added}
    assert live[keep]["rx"] == 10  # untouched: its counters stay
    assert live[added] == {"allowed": ["198.19.1.4/32"], "psk": psk, "rx": 0, "tx": 0}
    assert live[moved]["allowed"] == ["198.19.1.5/32"]
    assert "# revision 3" in node.files()["wgt9.peers"]
    assert not [p for p in (tmp_path / "run").iterdir() if p.is_dir()]  # psk files removed


def test_the_nodes_own_keys_are_refused(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    node.up("wgt9")
    (node.wg_dir / "wgt9.key").write_text("private-now\n")
    (node.wg_dir / "wgt9.key.next").write_text("private-next\n")
    pubkeys = [
        subprocess.run(
            [str(node.bin / "wg"), "pubkey"],
            input=text,
            capture_output=True,
            text=True,
            env=clean_environment(FAKE_NODE_STATE=str(node.state_file)),
            check=True,
        ).stdout.strip()
        for text in ("private-now\n", "private-next\n")
    ]
    before = live_view(node, "wgt9")
    for own in pubkeys:
        result = node.run(f"{HEAD}peer {key()} 198.19.1.2/32 -\npeer {own} 198.19.1.3/32 -\nend\n")
        assert result.stdout == "error line 5: the public key is this node's own public key\n"
        result = node.run(f"{HEAD}base 0\nrevision 1\nremove {own}\nend\n")
        assert result.stdout == "error line 6: the public key is this node's own public key\n"
    assert live_view(node, "wgt9") == before


def test_a_wg_set_failing_half_way_restores_the_live_peers_and_persists_nothing(
    tmp_path: Path,
) -> None:
    node = FakeNode(tmp_path)
    peers = {key(): fake_peer(f"198.19.1.{i}/32", new_preshared_key(), rx=i) for i in range(2, 8)}
    node.up("wgt9", peers)
    keys = list(peers)
    settled = {k: (v["allowed"][0], v["psk"]) for k, v in peers.items()}
    assert node.run(full_request(settled, 4)).returncode == 0
    before = live_view(node, "wgt9")
    # Two removed, two changed (one taking a removed peer's address), four added.
    desired = {k: settled[k] for k in keys[2:]}
    desired[keys[2]] = ("198.19.1.2/32", new_preshared_key())
    desired[keys[3]] = ("198.19.1.30/32", settled[keys[3]][1])
    desired.update(some_peers(4, first=40))
    node.fail_set_call(1)
    result = node.run(full_request(desired, 5))
    assert result.returncode == 2
    assert result.stdout == (
        "error wg set wgt9: Unable to modify interface: Argument list too long; "
        "the live peers were restored\n"
    )
    after = live_view(node, "wgt9")
    # Back as they were: the same peers, addresses and preshared keys; a removed peer put back
    # restarts at zero (the price of an undone failure), the others keep their counters.
    restarted = {k for k, v in after["live"]["wgt9"]["peers"].items() if v["rx"] == 0}
    for view in (before, after):
        for k in restarted:
            view["live"]["wgt9"]["peers"][k]["rx"] = view["live"]["wgt9"]["peers"][k]["tx"] = 0
    assert after == before
    assert restarted <= set(keys[:2])
    # The same request once `wg set` works: applied and persisted.
    node.fail_set_call(None)
    assert node.run(full_request(desired, 5)).returncode == 0
    assert {k: v["allowed"] for k, v in node.peers().items()} == {
        k: [v[0]] for k, v in desired.items()
    }


def test_a_delta_failing_half_way_is_undone_too(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    node.up("wgt9")
    settled = some_peers(6)
    assert node.run(full_request(settled, 8)).returncode == 0
    before = live_view(node, "wgt9")
    node.fail_set_call(1)
    keys = list(settled)
    result = node.run(delta_request(8, 9, some_peers(3, first=60), keys[:3]))
    assert result.stdout.endswith("; the live peers were restored\n")
    assert live_view(node, "wgt9") == before
    node.fail_set_call(None)
    assert parse_answer(node.run(delta_request(8, 9, {}, keys[:3])).stdout).delta


def test_a_delta_whose_live_peers_differ_from_the_persisted_set_asks_for_the_full_set(
    tmp_path: Path,
) -> None:
    node = FakeNode(tmp_path)
    node.up("wgt9")
    settled = some_peers(3)
    assert node.run(full_request(settled, 8)).returncode == 0
    state = node.state()
    state["ifaces"]["wgt9"]["peers"][key()] = fake_peer("198.19.1.99/32")  # added by hand
    node.save(state)
    result = node.run(delta_request(8, 9, {}, list(settled)[1:2]))
    assert result.stdout == "resync live peers differ from the persisted set\nok\n"


def test_a_failure_on_the_overlap_twin_restores_both_interfaces(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    node.up("wgt9")
    node.up("wgt9n")
    settled = some_peers(4)
    assert node.run(full_request(settled, 2)).returncode == 0
    assert set(node.peers("wgt9n")) == set(settled)
    before = live_view(node, "wgt9", "wgt9n")
    node.fail_set_call(2)  # the first `wg set` (wgt9) works, the twin's fails half-way
    result = node.run(full_request(some_peers(4, first=20), 3))
    assert result.stdout.endswith("; the live peers were restored\n")
    assert live_view(node, "wgt9", "wgt9n") == before


def test_the_watch_routes_only_single_tunnel_hosts_to_the_overlap(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    node.up("wgt9")
    used, idle, hostile, own = key(), key(), key(), key()
    # What root (or anything) left on the twin: the watch must route only the first.
    node.up(
        "wgt9n",
        {
            used: fake_peer("198.19.1.2/32", rx=5),
            idle: fake_peer("198.19.1.3/32"),
            hostile: {
                "allowed": ["0.0.0.0/0", "198.18.0.0/15", "198.19.1.0/24", "10.0.0.1/32"],
                "psk": None,
                "rx": 9,
                "tx": 9,
            },
            own: fake_peer("198.19.1.1/32", rx=3),
        },
    )
    result = node.run("", "--watch", "wgt9")
    assert result.returncode == 0, result.stdout + result.stderr
    state = node.state()
    assert state["ifaces"]["wgt9n"]["routes"] == ["198.19.1.2"]
    replaced = [c for c in state["ip_calls"] if "replace" in c]
    assert replaced == [["-4", "route", "replace", "198.19.1.2/32", "dev", "wgt9n"]]
    # Once routed, not again.
    node.run("", "--watch", "wgt9")
    assert [c for c in node.state()["ip_calls"] if "replace" in c] == replaced


def test_the_watch_moves_no_address_of_a_persisted_set_it_would_not_write(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    node.up("wgt9")
    old, new = key(), key()
    request = (
        f"{HEAD}revision 2\npeer {old} 198.19.1.2/32 -\npeer {new} 198.19.1.2/32 -\n"
        f"handover {old} {new}\nend\n"
    )
    assert node.run(request).returncode == 0
    peers_file = node.wg_dir / "wgt9.peers"
    peers_file.write_text(peers_file.read_text().replace("198.19.1.2/32", "0.0.0.0/0"))
    state = node.state()
    state["ifaces"]["wgt9"]["peers"][new]["rx"] = 1  # the client switched
    node.save(state)
    before = live_view(node, "wgt9")
    assert node.run("", "--watch", "wgt9").returncode == 0
    assert live_view(node, "wgt9") == before
    # Written as the push writes it, the same handover moves.
    peers_file.write_text(peers_file.read_text().replace("0.0.0.0/0", "198.19.1.2/32"))
    state = node.state()
    state["ifaces"]["wgt9"]["peers"][old]["allowed"] = ["198.19.1.2/32"]
    node.save(state)
    assert node.run("", "--watch", "wgt9").returncode == 0
    assert node.peers()[new]["allowed"] == ["198.19.1.2/32"]
    assert not (node.wg_dir / "wgt9.handover").exists()


def test_the_config_the_role_renders_is_one_the_script_accepts(tmp_path: Path) -> None:
    from tests.unit.test_templates import render

    text = render("peers_access", "etc/wgfleet/peers.json.j2")
    config = json.loads(text)
    assert config["interfaces"] == ["wg0"]
    assert config["tunnel_networks"] == {"ipv4": ["198.19.1.0/24"], "ipv6": []}
    assert config["tunnel_addresses"] == {"ipv4": ["198.19.1.1"], "ipv6": []}
    path = tmp_path / "peers.json"
    path.write_text(text)
    path.chmod(0o644)
    checked = run(path, "", "--check-config", str(path))
    assert (checked.returncode, checked.stdout) == (0, "")


def test_a_dual_stack_node_accepts_the_controller_s_request(tmp_path: Path) -> None:
    """The role's peers.json on a node with a /64, and a request the controller renders from
    the store (each peer's /32 and its derived /128): accepted and persisted as sent."""
    import ipaddress

    from orchestrator.core.addressing import TunnelNetworks
    from orchestrator.core.models import Configuration
    from orchestrator.core.peers import desired_peers
    from orchestrator.core.push_protocol import render_request
    from tests.unit.test_templates import IPV6, render

    rendered = json.loads(render("peers_access", "etc/wgfleet/peers.json.j2", **IPV6))
    assert rendered["tunnel_networks"]["ipv6"] == ["fd00:198:19:1::/64"]
    assert rendered["tunnel_addresses"]["ipv6"] == ["fd00:198:19:1::1"]
    (tmp_path / "wireguard").mkdir()
    config = write_config(
        tmp_path / "peers.json",
        peers_config(
            tmp_path,
            tunnel_networks=rendered["tunnel_networks"],
            tunnel_addresses=rendered["tunnel_addresses"],
        ),
    )
    k1, k2 = key(), key()
    configurations = [
        Configuration("a-1", "a", k1, None, {"node1": ipaddress.IPv4Address("198.19.1.2")}),
        Configuration("a-2", "a", k2, None, {"node1": ipaddress.IPv4Address("198.19.1.77")}),
    ]
    tunnels = TunnelNetworks(
        ipaddress.IPv4Network("198.19.1.0/24"), ipaddress.IPv6Network("fd00:198:19:1::/64")
    )
    peers = desired_peers("node1", configurations, tunnels=tunnels)
    request = render_request("apply", "wgt9", peers, {})
    assert f"peer {k1} 198.19.1.2/32,fd00:198:19:1::2/128 -" in request
    assert f"peer {k2} 198.19.1.77/32,fd00:198:19:1::4d/128 -" in request
    result = run(config, request)
    assert result.returncode == 0, result.stdout
    text = (tmp_path / "wireguard" / "wgt9.peers").read_text()
    assert "AllowedIPs = 198.19.1.2/32,fd00:198:19:1::2/128" in text
    assert "AllowedIPs = 198.19.1.77/32,fd00:198:19:1::4d/128" in text
    # The same peers on a node without a /64 (not deployed since the upgrade) are refused
    # whole, naming why: nothing half-applied.
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "wireguard").mkdir()
    old = write_config(tmp_path / "old" / "peers.json", peers_config(tmp_path / "old"))
    refused = run(old, request)
    # Line 4 is the first peer line; peers go in public-key order, so either one.
    assert refused.stdout in {
        f"error line 4: address 'fd00:198:19:1::{host}/128' is outside the node's IPv6 tunnel "
        "networks (none)\n"
        for host in ("2", "4d")
    }, refused.stdout
    assert list((tmp_path / "old" / "wireguard").iterdir()) == []


# --- the address check against ipaddress -----------------------------------------------------


def load_module() -> Any:
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("wgfleet_peers", str(SCRIPT))
    spec = importlib.util.spec_from_loader("wgfleet_peers", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


PEERS_MODULE = load_module()


@settings(max_examples=400, deadline=None)
@given(
    network=st.tuples(st.integers(0, (1 << 32) - 1), st.integers(8, 30)),
    own_offset=st.integers(1, 1 << 22),
    where=st.sampled_from(["anywhere", "near the start", "near the end"]),
    offset=st.integers(0, (1 << 32) - 1),
)
def test_the_fast_address_check_agrees_with_ipaddress(
    network: tuple[int, int], own_offset: int, where: str, offset: int
) -> None:
    """Whatever the tunnel network's size (the /24 blocks of /12 to /24 by text, anything else
    by number), an address is accepted exactly when ipaddress says it is a host of the network
    other than the node's own."""
    import ipaddress

    value, prefix = network
    net = ipaddress.IPv4Network((value, prefix), strict=False)
    own = net[1 + own_offset % (net.num_addresses - 2)]
    candidate = {
        "anywhere": offset,
        "near the start": int(net.network_address) + offset % 600 - 300,
        "near the end": int(net.broadcast_address) + offset % 600 - 300,
    }[where] % (1 << 32)
    text = f"{ipaddress.IPv4Address(candidate)}/32"
    tunnel = PEERS_MODULE.Tunnel([(int(net.network_address), prefix)], [int(own)], [], [])
    expected = ipaddress.IPv4Address(candidate) in net and candidate not in (
        int(net.network_address),
        int(net.broadcast_address),
        int(own),
    )
    try:
        tunnel.addresses(text)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == expected, (str(net), str(own), text)
