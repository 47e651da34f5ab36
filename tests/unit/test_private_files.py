"""Secret files are created without following links, 0600, in 0700 directories: a link planted
where each one will be created is refused, and nothing is written through it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.adapters import fleet_secret, keyfiles
from orchestrator.adapters.private_files import check_target, private_dir, write_private
from orchestrator.cli import main
from orchestrator.errors import ConfigError, UsageError
from orchestrator.settings import Settings

NOBODY = 65534


@pytest.fixture
def bait(tmp_path: Path) -> Path:
    """The file an attacker wants written (or read): it must keep its bytes and mode."""
    target = tmp_path / "victim" / "bait"
    target.parent.mkdir()
    target.write_text("untouched\n")
    target.chmod(0o644)
    return target


def untouched(bait: Path) -> bool:
    return bait.read_text() == "untouched\n" and bait.stat().st_mode & 0o777 == 0o644


def plant(link: Path, bait: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(bait)


def test_write_private_makes_a_0600_file_and_replaces_only_its_own(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    write_private(target, b"one")
    assert target.read_bytes() == b"one" and target.stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "hard-link"
    os.link(target, elsewhere)
    write_private(target, b"two")
    # Replaced whole: the old inode (and a hard link to it) is never written to.
    assert target.read_bytes() == b"two" and elsewhere.read_bytes() == b"one"
    write_private(tmp_path / "public", b"x", mode=0o644)
    assert (tmp_path / "public").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard-link", "public", "secret"]


@pytest.mark.parametrize("kind", ["link to a file", "dangling link", "directory", "stranger's"])
def test_write_private_refuses_what_it_must_not_replace(
    tmp_path: Path, bait: Path, kind: str
) -> None:
    target = tmp_path / "secret"
    if kind == "link to a file":
        plant(target, bait)
    elif kind == "dangling link":
        plant(target, tmp_path / "victim" / "new-file")
    elif kind == "directory":
        target.mkdir()
    else:
        target.write_text("theirs")
        os.chown(target, NOBODY, NOBODY)
    with pytest.raises(UsageError, match=r"nothing was written"):
        write_private(target, b"SECRET")
    assert untouched(bait)
    assert not (tmp_path / "victim" / "new-file").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_data_directory_is_made_0700_tightened_if_ours_and_refused_if_not(
    tmp_path: Path,
) -> None:
    made = private_dir(tmp_path / "a" / "data")
    assert made.stat().st_mode & 0o777 == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o777)
    private_dir(loose)
    assert loose.stat().st_mode & 0o777 == 0o700
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UsageError, match="belongs to another user"):
        private_dir(theirs)
    linked = tmp_path / "linked"
    linked.symlink_to(made)
    private_dir(linked, follow=True)  # the operator's data_dir may be a link to one
    with pytest.raises(UsageError, match="symbolic link"):
        private_dir(linked)  # the directories wgfleet makes inside it may not


def test_a_key_directory_the_operator_chose_is_not_changed_but_must_be_closed(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    keyfiles.ensure_ssh_keypair(shared / "deploy_ed25519", "x")
    assert shared.stat().st_mode & 0o777 == 0o755
    shared.chmod(0o777)
    with pytest.raises(UsageError, match="other users may write into it"):
        keyfiles.ensure_ssh_keypair(shared / "push_ed25519", "x")


@pytest.mark.parametrize("planted", ["deploy_ed25519", "deploy_ed25519.pub"])
def test_a_link_planted_at_an_ssh_key_is_refused(tmp_path: Path, bait: Path, planted: str) -> None:
    keys = tmp_path / "keys"
    plant(keys / planted, bait)
    with pytest.raises(UsageError, match="symbolic link"):
        keyfiles.ensure_ssh_keypair(keys / "deploy_ed25519", "wgfleet-deploy")
    assert untouched(bait)
    assert sorted(p.name for p in keys.iterdir()) == [planted]


def test_an_existing_key_is_kept_and_a_loose_one_tightened(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "deploy_ed25519"
    line = keyfiles.ensure_ssh_keypair(key, "wgfleet-deploy")
    key.chmod(0o644)
    (key.parent / "deploy_ed25519.pub").unlink()
    assert keyfiles.ensure_ssh_keypair(key, "wgfleet-deploy") == line
    assert key.stat().st_mode & 0o777 == 0o600
    assert (key.parent / "deploy_ed25519.pub").stat().st_mode & 0o777 == 0o644


def test_a_link_planted_at_the_fleet_secret_is_refused_and_never_read(
    tmp_path: Path, bait: Path
) -> None:
    where = fleet_secret.SecretFile(tmp_path / "fleet-secret")
    plant(where.path, bait)
    with pytest.raises(ConfigError, match=r"fleet_secret.*exists already"):
        fleet_secret.create_secret(where.path, "settings.yml")
    with pytest.raises(ConfigError, match=r"fleet_secret.*symbolic link"):
        fleet_secret.read_secret(where, "settings.yml")  # a planted secret is never used
    assert untouched(bait)


def test_check_target_accepts_a_missing_file_and_this_users_file(tmp_path: Path) -> None:
    check_target(tmp_path / "new")
    (tmp_path / "mine").write_text("x")
    check_target(tmp_path / "mine")


# --- every file a command writes: a link planted there is refused, nothing written through -----


def _account(settings: Settings) -> None:
    from orchestrator.core.models import Account
    from orchestrator.service.context import open_fleet

    with open_fleet(settings) as fleet:
        fleet.store.add_account(Account("quill", "scrypt$q", "dev-q"))


def _configurations(settings: Settings) -> list[str]:
    from orchestrator.service.context import open_fleet

    with open_fleet(settings) as fleet:
        return [c.name for c in fleet.store.configurations()]


def _fleet_file(tmp_path: Path) -> str:
    path = tmp_path / "fleet.yml"
    path.write_text("version: 1\nplans:\n  basic: {quota: 1GiB}\n")
    return str(path)


COMMANDS: dict[str, Callable[[Path, Settings], tuple[Path, list[str]]]] = {
    "peers add --out FILE": lambda base, s: (
        base / "quill.conf",
        ["peers", "add", "quill", "--nodes", "node1", "--out", str(base / "quill.conf")],
    ),
    "peers add --out FILE (one file per node)": lambda base, s: (
        base / "quill.conf.node2.conf",
        ["peers", "add", "quill", "--all-nodes", "--out", str(base / "quill.conf")],
    ),
    "keys rotate psk --out FILE": lambda base, s: (
        base / "psk.txt",
        ["keys", "rotate", "psk", "quill-1", "--out", str(base / "psk.txt")],
    ),
    "keys rotate peer --out FILE": lambda base, s: (
        base / "new.conf",
        ["keys", "rotate", "peer", "quill-1", "--out", str(base / "new.conf")],
    ),
    "keys reissue --out DIR": lambda base, s: (
        base / "configs" / "quill-1.node1.conf",
        ["keys", "reissue", "quill-1", "--out", str(base / "configs")],
    ),
    "accounts export -o": lambda base, s: (
        base / "quill.json",
        ["accounts", "export", "quill", "-o", str(base / "quill.json")],
    ),
    "plan --out": lambda base, s: (
        base / "plan.json",
        ["plan", "-f", _fleet_file(base), "--out", str(base / "plan.json")],
    ),
    "export -o": lambda base, s: (
        base / "fleet-out.yml",
        ["export", "-o", str(base / "fleet-out.yml")],
    ),
    "fleet lock": lambda base, s: (
        s.data_dir / "fleet.lock",
        ["plans", "set", "x", "--quota", "1"],
    ),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_link_planted_where_a_command_writes_is_refused(
    command: str,
    settings: Settings,
    tmp_path: Path,
    bait: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _account(settings)
    if "quill-1" in " ".join(COMMANDS[command](tmp_path, settings)[1]):
        quill = tmp_path / "first.conf"
        assert main(["peers", "add", "quill", "--nodes", "node1", "--out", str(quill)]) in (0, 1)
    capsys.readouterr()
    before = _configurations(settings)
    link, argv = COMMANDS[command](tmp_path, settings)
    plant(link, bait)
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2 if command != "plan --out" else code == 1, captured.err
    assert "symbolic link" in captured.err or "Too many levels" in captured.err, captured.err
    assert untouched(bait)
    assert link.is_symlink()
    # Refused before anything changed: no configuration made, no key rotated.
    assert _configurations(settings) == before
    assert "PrivateKey" not in captured.out + captured.err


def test_a_loose_data_directory_is_tightened_before_use(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.data_dir.chmod(0o755)
    assert main(["--json", "plans", "list"]) == 0
    assert settings.data_dir.stat().st_mode & 0o777 == 0o700
    json.loads(capsys.readouterr().out)


def test_another_users_data_directory_is_refused(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chown(settings.data_dir, NOBODY, NOBODY)
    try:
        assert main(["plans", "list"]) == 2
        assert "belongs to another user (uid 65534)" in capsys.readouterr().err
    finally:
        os.chown(settings.data_dir, os.geteuid(), os.getegid())
    shutil.rmtree(settings.data_dir / "keys", ignore_errors=True)


def test_directories_wgfleet_creates_are_0700_parents_included(tmp_path: Path) -> None:
    private_dir(tmp_path / "a" / "b" / "data")
    for made in ("a", "a/b", "a/b/data"):
        assert (tmp_path / made).stat().st_mode & 0o777 == 0o700
    write_private(tmp_path / "x" / "y" / "export.json", b"{}", make_parent=True)
    assert (tmp_path / "x").stat().st_mode & 0o777 == 0o700


def _lab_inventory(settings: Settings) -> None:
    from orchestrator.adapters.lab.state import LabState, NodeRecord
    from orchestrator.core.lab_layout import plan_layout
    from orchestrator.service.lab import _write_inventory

    layout = plan_layout("t", settings.lab.subnet, 1, 0)
    state = LabState("t", str(settings.lab.subnet), 1, 0)
    state.machines = {"node1": NodeRecord(host_key=keyfiles.new_host_key()[1])}
    _write_inventory(settings, layout, state)


def _deploy_state(settings: Settings) -> None:
    from orchestrator.adapters.node_state import save_records

    save_records(settings.data_dir / "deploy-state.json", {})


def _fleet_nodes(settings: Settings) -> None:
    from orchestrator.service.deploy import write_fleet_nodes

    write_fleet_nodes(settings, {"node1": {"wireguard_port": 51820}})


INTERNAL_WRITERS: dict[str, tuple[Callable[[Settings], Path], Callable[[Settings], None]]] = {
    "known_hosts (lab up)": (lambda s: s.ssh.known_hosts, _lab_inventory),
    "lab inventory hosts.yml": (lambda s: s.inventory / "hosts.yml", _lab_inventory),
    "deploy-state.json": (lambda s: s.data_dir / "deploy-state.json", _deploy_state),
    "fleet-nodes.yml": (lambda s: s.data_dir / "fleet-nodes.yml", _fleet_nodes),
}


@pytest.mark.parametrize("written", sorted(INTERNAL_WRITERS))
def test_a_link_planted_where_wgfleet_keeps_its_own_files_is_refused(
    written: str, settings: Settings, bait: Path
) -> None:
    where, write = INTERNAL_WRITERS[written]
    link = where(settings)
    link.unlink(missing_ok=True)
    plant(link, bait)
    with pytest.raises(UsageError, match="symbolic link"):
        write(settings)
    assert untouched(bait) and link.is_symlink()
    link.unlink()
    write(settings)  # and without the link it works, 0600 or world-readable as it should
    mode = link.stat().st_mode & 0o777
    assert mode == (0o644 if link.parent == settings.inventory else 0o600)
