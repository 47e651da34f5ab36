"""The fleet secret on a controller: made once where none exists, refused in one line when
missing, short or another fleet's, handed in by systemd, rotated in one transaction; and the
preshared-key files of an older wgfleet moved into the store.

Real SQLite stores and the real `wgfleet` entry point; the nodes answer nobody (pushes fail
with exit 1 and leave nodes pending), which is all these tests need.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from orchestrator.adapters import fleet_secret
from orchestrator.cli import main
from orchestrator.core.models import Account
from orchestrator.errors import ConfigError
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings, load_settings, settings_from_mapping


def _stored_keys(settings: Settings) -> dict[str, str]:
    with open_fleet(settings) as fleet:
        refs = [ref for ref, _, _ in fleet.store.sealed_secrets()]
        return {ref: fleet.secrets.get(ref) for ref in refs}


@pytest.fixture
def made(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Settings:
    """Two configurations with preshared keys on the first controller."""
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("quill", "scrypt$q", "dev-q"))
    for index in (1, 2):
        argv = ["peers", "add", "quill", "--nodes", "node1", "--out", str(tmp_path / f"{index}")]
        assert main(argv) == 1  # made; the push fails (nobody answers)
    capsys.readouterr()
    return settings


def _second_controller(settings: Settings, tmp_path: Path, secret: bytes | None) -> Path:
    """Settings of a controller with a data directory of its own on the same store."""
    data = tmp_path / "second"
    data.mkdir(mode=0o700)
    if secret is not None:
        (data / "fleet-secret").write_bytes(secret)
        (data / "fleet-secret").chmod(0o600)
    config = tmp_path / "second.yml"
    config.write_text(
        f"data_dir: {data}\nstore_url: '{settings.store_url}'\n"
        f"inventory: {settings.inventory}\nssh: {{connect_timeout: 2}}\n"
    )
    return config


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_the_first_writing_session_makes_the_secret_and_the_store_holds_keys_sealed(
    made: Settings, tmp_path: Path
) -> None:
    secret = made.fleet_secret_file
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(secret.read_bytes())) == 32
    keys = _stored_keys(made)
    assert len(keys) == 2
    configs = "".join((tmp_path / name).read_text() for name in ("1", "2"))
    for value in keys.values():
        assert f"PresharedKey = {value}" in configs
    # The store's files (with its WAL) hold no preshared key, nor the secret.
    store_files = [p for p in made.data_dir.iterdir() if p.name.startswith("wgfleet.db")]
    assert store_files
    raw = b"".join(p.read_bytes() for p in store_files)
    for value in [*keys.values(), secret.read_text().strip()]:
        assert value.encode() not in raw
    assert not (made.data_dir / "secrets").exists()


def test_a_second_controller_needs_the_fleets_own_secret(
    made: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = _second_controller(made, tmp_path, None)
    assert main(["--config", str(missing), "keys", "rotate", "psk", "quill-1", "--out", "-"]) == 2
    line = _one_error_line(capsys)
    assert "fleet_secret" in line and "fleet-secret" in line and "missing" in line
    assert not (tmp_path / "second" / "fleet-secret").exists()  # never made beside a fleet's

    other = base64.b64encode(os.urandom(32)) + b"\n"
    (tmp_path / "second").rename(tmp_path / "gone")
    wrong = _second_controller(made, tmp_path, other)
    assert main(["--config", str(wrong), "peers", "enable", "quill-1"]) == 2
    assert "the store's preshared keys are sealed under" in _one_error_line(capsys)

    (tmp_path / "second" / "fleet-secret").write_bytes(made.fleet_secret_file.read_bytes())
    assert _stored_keys(load_settings(wrong)) == _stored_keys(made)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (base64.b64encode(bytes(16)) + b"\n", "holds 16 bytes, a fleet secret needs at least 32"),
        (b"not base64 at all\n", "is not one base64 line"),
    ],
)
def test_a_short_or_garbled_secret_is_refused_in_one_line(
    made: Settings, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    made.fleet_secret_file.write_bytes(content)
    assert main(["peers", "enable", "quill-1"]) == 2
    line = _one_error_line(capsys)
    assert problem in line and str(made.fleet_secret_file) in line


def test_a_systemd_credential_wins_over_the_settings_file(
    made: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / fleet_secret.CREDENTIAL_NAME).write_bytes(made.fleet_secret_file.read_bytes())
    made.fleet_secret_file.write_bytes(base64.b64encode(os.urandom(32)))  # not the fleet's
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert len(_stored_keys(made)) == 2
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match="sealed under"):
        _stored_keys(made)


def test_rotation_reseals_every_key_and_replaces_the_secret(
    made: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _stored_keys(made)
    old_secret = made.fleet_secret_file.read_bytes()
    assert main(["--json", "keys", "rotate", "fleet-secret"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["resealed"] == 2 and result["installed"] is True
    assert result["key_id"] != result["previous_key_id"]
    assert result["secret_file"] == str(made.fleet_secret_file)
    new_secret = made.fleet_secret_file.read_bytes()
    assert new_secret != old_secret and made.fleet_secret_file.stat().st_mode & 0o777 == 0o600
    assert new_secret.decode().strip() not in captured.out + captured.err
    assert not os.path.lexists(fleet_secret.SecretFile(made.fleet_secret_file).pending)
    assert _stored_keys(made) == before  # the same keys, sealed anew
    with open_fleet(made) as fleet:
        assert {key_id for _, key_id, _ in fleet.store.sealed_secrets()} == {result["key_id"]}
    # A controller still holding the old secret is refused until it gets the new one.
    stale = _second_controller(made, tmp_path, old_secret)
    assert main(["--config", str(stale), "peers", "enable", "quill-1"]) == 2
    assert result["key_id"] in _one_error_line(capsys)


def test_a_rotation_stopped_after_its_commit_is_finished_by_the_next_session(
    made: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _stored_keys(made)
    install = fleet_secret.install_pending
    monkeypatch.setattr(fleet_secret, "install_pending", lambda where: None)  # "killed" here
    assert main(["keys", "rotate", "fleet-secret"]) == 0
    monkeypatch.setattr(fleet_secret, "install_pending", install)
    assert _stored_keys(made) == before
    assert not os.path.lexists(fleet_secret.SecretFile(made.fleet_secret_file).pending)


def test_a_credential_is_rotated_only_with_a_new_secret_the_operator_made(
    made: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    credential = credentials / fleet_secret.CREDENTIAL_NAME
    credential.write_bytes(made.fleet_secret_file.read_bytes())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert main(["keys", "rotate", "fleet-secret"]) == 2
    assert "--new-secret FILE" in _one_error_line(capsys)
    new = tmp_path / "new-secret"
    new.write_bytes(base64.b64encode(os.urandom(32)))
    new.chmod(0o600)
    assert main(["--json", "keys", "rotate", "fleet-secret", "--new-secret", str(new)]) == 0
    assert json.loads(capsys.readouterr().out)["installed"] is False
    credential.write_bytes(new.read_bytes())  # as the operator installs it
    assert len(_stored_keys(made)) == 2
    assert main(["keys", "rotate", "fleet-secret", "--new-secret", str(new)]) == 2
    assert "is the current fleet secret" in _one_error_line(capsys)


def test_local_preshared_key_files_move_into_the_store_once(made: Settings) -> None:
    """An older wgfleet kept each preshared key as a file in secrets/: the first session
    seals the ones a configuration names into the store and removes the directory."""
    before = _stored_keys(made)
    with open_fleet(made) as fleet, fleet.store.transaction():  # back to schema 16
        for table in ("sealed_secrets", "fleet_key", "controllers", "shared_files"):
            fleet.store.db.execute(f"DROP TABLE {table}")  # the tables of 17 and later
        fleet.store.db.execute("DELETE FROM schema_migrations WHERE version >= 17")
    made.fleet_secret_file.unlink()  # an older wgfleet had none
    local = made.data_dir / "secrets"
    local.mkdir(mode=0o700)
    for ref, value in before.items():
        (local / ref.removeprefix("psk:")).write_text(value + "\n")
        (local / ref.removeprefix("psk:")).chmod(0o600)
    (local / "gone-1").write_text("an old key no configuration names\n")
    assert main(["peers", "list"]) == 1  # StoreError: `wgfleet db upgrade` first
    assert main(["db", "upgrade"]) == 0
    assert local.exists()  # the upgrade itself holds no fleet secret yet
    assert _stored_keys(made) == before  # the first session made it and sealed them
    assert not local.exists() and made.fleet_secret_file.exists()


def test_the_settings_name_the_secret_file(tmp_path: Path) -> None:
    default = settings_from_mapping({"data_dir": str(tmp_path)}, "s.yml", tmp_path)
    assert default.fleet_secret_file == tmp_path / "fleet-secret"
    chosen = settings_from_mapping(
        {"data_dir": str(tmp_path), "fleet_secret": "etc/secret"}, "s.yml", tmp_path
    )
    assert chosen.fleet_secret_file == tmp_path / "etc" / "secret"
    assert chosen.describe()["fleet_secret"] == str(tmp_path / "etc" / "secret")


def test_a_session_opened_before_a_rotation_seals_and_opens_under_the_new_key(
    made: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_fleet(made) as fleet:
        old_key = fleet.secrets.keyring().current.key_id
        assert main(["keys", "rotate", "fleet-secret"]) == 0  # another process, meanwhile
        assert fleet.secrets.get("psk:quill-1")  # resealed under a key it had not loaded
        fleet.secrets.put_psk("quill-9", "A" * 43 + "=")
        (key_id,) = {key_id for _, key_id, _ in fleet.store.sealed_secrets()}
        assert key_id != old_key and key_id == fleet.store.fleet_key_id()


def test_a_link_planted_as_the_old_secrets_directory_is_refused(
    made: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "quill-1").write_text("A" * 43 + "=\n")
    (made.data_dir / "secrets").symlink_to(elsewhere)
    assert main(["peers", "list"]) == 2
    assert "symbolic link" in _one_error_line(capsys)
    assert (elsewhere / "quill-1").exists()  # nothing read in, nothing removed
