"""On PostgreSQL the pinned host keys, deploy fingerprints and fleet-file node settings are
the fleet's, not one controller's: a writing session on one controller puts its changes in
the store and the next session on another controller reads them. SQLite keeps only the
files."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.adapters.store import open_store
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings, settings_from_mapping

PIN = "198.18.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOnodeonekeyxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"


def _controller(base: Path, url: str) -> Settings:
    return settings_from_mapping(
        {"data_dir": str(base / "data"), "store_url": url, "inventory": str(base / "inventory")},
        "test settings",
        base,
    )


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_one_controllers_pins_and_deploy_records_reach_the_other(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'wgfleet.db'}"
    else:
        from tests.pgserver import fresh_database

        url = fresh_database(request.getfixturevalue("postgres_server"))
    a, b = _controller(tmp_path / "a", url), _controller(tmp_path / "b", url)
    with open_fleet(a, write=True):
        a.ssh.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        a.ssh.known_hosts.write_text(PIN, encoding="ascii")  # as `nodes trust` pins a key
        (a.data_dir / "deploy-state.json").write_text('{"version": 1, "nodes": {}}\n')
    with open_fleet(b):
        pass
    if dialect == "sqlite":
        assert not b.ssh.known_hosts.exists()
        assert not (b.data_dir / "deploy-state.json").exists()
        return
    assert b.ssh.known_hosts.read_text(encoding="ascii") == PIN
    assert b.ssh.known_hosts.stat().st_mode & 0o777 == 0o644
    assert (b.data_dir / "deploy-state.json").stat().st_mode & 0o777 == 0o600
    # b changes a pin in its own writing session (with the fleet secret copied over, as an
    # operator sets up a second controller): a's next session has it.
    b.fleet_secret_file.write_bytes(a.fleet_secret_file.read_bytes())
    b.fleet_secret_file.chmod(0o600)
    with open_fleet(b, write=True):
        b.ssh.known_hosts.write_text(PIN.replace("11 ", "12 "), encoding="ascii")
    with open_fleet(a):
        pass
    assert a.ssh.known_hosts.read_text(encoding="ascii") == PIN.replace("11 ", "12 ")
    store = open_store(url)
    try:
        assert set(store.shared_files()) == {"known_hosts", "deploy-state.json"}
    finally:
        store.close()


def test_a_labs_new_pins_become_the_fleets_and_stay_after_the_next_session(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`lab up` on PostgreSQL replaces the pins with the new lab's host keys: written inside
    its pins session they reach the store; written outside one, the next session's pull puts
    the store's older pins back over them (what `lab up` did before)."""
    from orchestrator.service.lab import _pins_session
    from tests.pgserver import fresh_database

    url = fresh_database(request.getfixturevalue("postgres_server"))
    a = _controller(tmp_path / "a", url)
    with open_fleet(a, write=True):  # an earlier lab's pins, the fleet's copy
        a.ssh.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        a.ssh.known_hosts.write_text(PIN, encoding="ascii")
    rebuilt = PIN.replace("nodeonekey", "nodenewkey")

    a.ssh.known_hosts.write_text(rebuilt, encoding="ascii")  # outside a session...
    with open_fleet(a):
        pass
    assert a.ssh.known_hosts.read_text(encoding="ascii") == PIN  # ...lost to the store's

    with _pins_session(a):
        a.ssh.known_hosts.write_text(rebuilt, encoding="ascii")  # as _write_inventory does
    with open_fleet(a):
        pass
    assert a.ssh.known_hosts.read_text(encoding="ascii") == rebuilt
    store = open_store(url)
    try:
        assert store.shared_files()["known_hosts"] == rebuilt
    finally:
        store.close()
