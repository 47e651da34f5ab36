"""The node's `wgfleet-peers` entry point, rendered from its template and run here.

With no such interface on this machine the script takes its `interface down` path: it still
validates the request strictly, plans from an empty live set, and in apply mode persists the
desired set for the next interface start. Live changes are exercised on the lab.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from orchestrator.adapters.wgkeys import new_keypair, new_preshared_key
from orchestrator.core.push_protocol import parse_answer

TEMPLATE = (
    Path(__file__).parents[2]
    / "roles"
    / "peers_access"
    / "templates"
    / "usr/local/sbin/wgfleet-peers.j2"
)


@pytest.fixture
def script(tmp_path: Path) -> tuple[Path, Path]:
    wg_dir = tmp_path / "wireguard"
    wg_dir.mkdir()
    text = jinja2.Template(TEMPLATE.read_text(), undefined=jinja2.StrictUndefined).render(
        ansible_managed="test",
        peers_wireguard_dir=str(wg_dir),
        peers_epoch_dir=str(tmp_path / "run"),
        peers_max_peers=100,
    )
    path = tmp_path / "wgfleet-peers"
    path.write_text(text)
    return path, wg_dir


def run(script: Path, request: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script)], input=request, capture_output=True, text=True, check=False
    )


def test_apply_with_the_interface_down_persists_the_desired_set(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    k1, k2, psk = new_keypair().public_key, new_keypair().public_key, new_preshared_key()
    request = f"wgfleet-peers 1\nmode apply\ninterface wgt9\npeer {k1} 198.19.1.2/32 {psk}\npeer {k2} 198.19.1.3/32 -\nend\n"
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
    k1 = new_keypair().public_key
    result = run(
        path, f"wgfleet-peers 1\nmode plan\ninterface wgt9\npeer {k1} 198.19.1.2/32 -\nend\n"
    )
    assert parse_answer(result.stdout).added == (k1,)
    assert not (wg_dir / "wgt9.peers").exists()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("mode apply\ninterface wgt9\n", "expected header 'wgfleet-peers 1'"),
        ("wgfleet-peers 1\nmode apply\ninterface wgt9\n", "request truncated: no 'end' line"),
        ("wgfleet-peers 1\nmode apply\ninterface wg0;reboot\nend\n", "line 3: not understood"),
        (
            "wgfleet-peers 1\nmode apply\ninterface wgt9\npeer nokey 198.19.1.2/32 -\nend\n",
            "line 4: bad or repeated public key",
        ),
        (
            "wgfleet-peers 1\nmode apply\ninterface wgt9\npeer {k} 198.19.1.2/24 -\nend\n",
            "line 4: 198.19.1.2/24 has host bits set",
        ),
        (
            "wgfleet-peers 1\nmode apply\ninterface wgt9\npeer {k} 198.19.1.2/32 $(id)\nend\n",
            "line 4: bad preshared key",
        ),
        ("wgfleet-peers 1\ninterface wgt9\nend\n", "request lacks a mode or an interface"),
    ],
)
def test_bad_requests_are_refused_whole(script: tuple[Path, Path], body: str, error: str) -> None:
    path, wg_dir = script
    result = run(path, body.replace("{k}", new_keypair().public_key))
    assert result.returncode == 2
    assert result.stdout == f"error {error}\n"
    assert not (wg_dir / "wgt9.peers").exists()


def test_a_handover_keeps_the_address_on_the_old_key_until_the_new_one_is_used(
    script: tuple[Path, Path],
) -> None:
    path, wg_dir = script
    old, new = new_keypair().public_key, new_keypair().public_key
    psk_old, psk_new = new_preshared_key(), new_preshared_key()
    request = (
        f"wgfleet-peers 1\nmode apply\ninterface wgt9\n"
        f"peer {old} 198.19.1.2/32 {psk_old}\npeer {new} 198.19.1.2/32 {psk_new}\n"
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
    result = run(
        path,
        f"wgfleet-peers 1\nmode apply\ninterface wgt9\npeer {new} 198.19.1.2/32 {psk_new}\nend\n",
    )
    assert result.returncode == 0, result.stdout
    assert not handover.exists()
    assert "AllowedIPs = 198.19.1.2/32" in (wg_dir / "wgt9.peers").read_text()


def test_a_handover_must_pair_two_listed_peers_with_the_same_networks(
    script: tuple[Path, Path],
) -> None:
    path, _ = script
    old, new = new_keypair().public_key, new_keypair().public_key
    request = (
        f"wgfleet-peers 1\nmode apply\ninterface wgt9\n"
        f"peer {old} 198.19.1.2/32 -\npeer {new} 198.19.1.3/32 -\nhandover {old} {new}\nend\n"
    )
    result = run(path, request)
    assert result.returncode == 2
    assert "a handover names two listed peers with the same networks" in result.stdout
