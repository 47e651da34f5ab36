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


def full_request(peers: dict[str, tuple[str, str]], revision: int | None) -> str:
    lines = ["wgfleet-peers 1", "mode apply", "interface wgt9"]
    if revision is not None:
        lines.append(f"revision {revision}")
    lines += [f"peer {key} {net} {psk}" for key, (net, psk) in peers.items()]
    return "\n".join([*lines, "end"]) + "\n"


def delta_request(
    base: int, revision: int, hold: dict[str, tuple[str, str]], drop: list[str]
) -> str:
    lines = ["wgfleet-peers 1", "mode apply", "interface wgt9", f"base {base}"]
    lines.append(f"revision {revision}")
    lines += [f"peer {key} {net} {psk}" for key, (net, psk) in hold.items()]
    lines += [f"remove {key}" for key in drop]
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
    return {
        new_keypair().public_key: (f"198.19.1.{first + i}/32", new_preshared_key())
        for i in range(count)
    }


def test_a_delta_applies_on_the_revision_it_names_and_records_the_next(
    script: tuple[Path, Path],
) -> None:
    path, wg_dir = script
    peers = some_peers(5)
    assert run(path, full_request(peers, 41)).returncode == 0
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


def test_a_delta_touching_a_pending_handover_or_a_static_peer_asks_for_the_full_set(
    script: tuple[Path, Path],
) -> None:
    path, wg_dir = script
    old, new, other = (new_keypair().public_key for _ in range(3))
    psk = new_preshared_key()
    request = (
        f"wgfleet-peers 1\nmode apply\ninterface wgt9\nrevision 7\n"
        f"peer {old} 198.19.1.2/32 {psk}\npeer {new} 198.19.1.2/32 {psk}\n"
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
    static = new_keypair().public_key
    (wg_dir / "wgt9.conf").write_text(f"[Interface]\n\n[Peer]\nPublicKey = {static}\n")
    result = run(path, delta_request(8, 9, {}, [static]))
    assert result.stdout == "resync a static peer is touched\nok\n"


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
        ("base -1\nrevision 2\n", "line 4: not understood"),
        ("base 1\nrevision 02\n", "line 5: not understood"),
        ("base 1\nrevision 2\nremove nokey\n", "line 6: bad public key"),
    ],
)
def test_bad_delta_requests_are_refused_whole(
    script: tuple[Path, Path], lines: str, error: str
) -> None:
    path, wg_dir = script
    body = "wgfleet-peers 1\nmode apply\ninterface wgt9\n" + lines + "end\n"
    keys = {"k": new_keypair().public_key, "j": new_keypair().public_key}
    result = run(path, body.format(**keys))
    assert result.returncode == 2
    assert result.stdout == f"error {error}\n"
    assert not (wg_dir / "wgt9.peers").exists()


def test_a_full_set_without_a_revision_forgets_the_recorded_one(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    peers = some_peers(2)
    assert run(path, full_request(peers, 3)).returncode == 0
    assert run(path, full_request(peers, None)).returncode == 0
    assert persisted(wg_dir) == (peers, "")
    result = run(path, delta_request(3, 4, {}, list(peers)))
    assert parse_answer(result.stdout).resync == "node holds revision none, not 3"


def test_the_persisted_set_reads_back_whatever_its_layout(script: tuple[Path, Path]) -> None:
    """The .peers file is read in one pass when laid out as the script writes it, else line by
    line: a hand-edited file (spacing, a comment) reads the same."""
    path, wg_dir = script
    peers = some_peers(4)
    assert run(path, full_request(peers, 5)).returncode == 0
    text = (wg_dir / "wgt9.peers").read_text()
    key = list(peers)[2]
    edited = text.replace(f"PublicKey = {key}", f"# moved by hand\nPublicKey={key}")
    edited = edited.replace("AllowedIPs = ", "AllowedIPs=  ", 1)
    (wg_dir / "wgt9.peers").write_text(edited)
    result = run(path, delta_request(5, 6, {}, [key]))
    assert parse_answer(result.stdout).unchanged == 3
    assert persisted(wg_dir) == ({k: v for k, v in peers.items() if k != key}, "# revision 6")


def test_the_handover_watch_keeps_the_recorded_revision(script: tuple[Path, Path]) -> None:
    path, wg_dir = script
    old, new = new_keypair().public_key, new_keypair().public_key
    request = (
        f"wgfleet-peers 1\nmode apply\ninterface wgt9\nrevision 12\n"
        f"peer {old} 198.19.1.2/32 -\npeer {new} 198.19.1.2/32 -\nhandover {old} {new}\nend\n"
    )
    assert run(path, request).returncode == 0
    watched = subprocess.run(
        [sys.executable, str(path), "--watch", "wgt9"], capture_output=True, text=True, check=False
    )
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert persisted(wg_dir)[1] == "# revision 12"
    assert (wg_dir / "wgt9.handover").exists()  # the new key was not used: still pending
