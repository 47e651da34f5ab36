"""Client private keys and preshared keys go only to a terminal, to an --out file (0600), or to
stdout when asked with `--out -`; anything else is refused with exit 2 before a change."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core.wgquick import parse_wg_quick
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings

NOBODY = 65534


@pytest.fixture
def quill(settings: Settings) -> Settings:
    from orchestrator.core.models import Account

    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("quill", "scrypt$q", "dev-q"))
    return settings


def _state(settings: Settings) -> list[tuple[str, str, str | None]]:
    """Every configuration's key and preshared-key reference, and the secret files kept."""

    with open_fleet(settings, write=True) as fleet:
        configs = [(c.name, c.public_key, c.psk_ref) for c in fleet.store.configurations()]
        sealed = [ref for ref, _, _ in fleet.store.sealed_secrets()]
    return [*configs, ("sealed", ",".join(sealed), None)]


def _private_keys(text: str) -> list[str]:
    return [
        line.split("=", 1)[1].strip()
        for line in text.splitlines()
        if line.replace(" ", "").startswith(("PrivateKey=", "PresharedKey="))
    ]


def _add(path: Path) -> list[str]:
    return ["peers", "add", "quill", "--nodes", "node1", "--out", str(path)]


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["peers", "add", "quill", "--nodes", "node1"], "stdout is not a terminal"),
        (["--json", "peers", "add", "quill", "--nodes", "node1"], "--json carries"),
        (["--quiet", "peers", "add", "quill", "--all-nodes"], "--quiet would not show"),
        (["keys", "rotate", "peer", "quill-1"], "stdout is not a terminal"),
        (["--json", "keys", "rotate", "peer", "quill-1"], "--json carries"),
        (["keys", "rotate", "psk", "quill-1"], "stdout is not a terminal"),
        (["--json", "keys", "rotate", "psk", "--node", "node1"], "--json carries"),
    ],
)
def test_secrets_for_a_pipe_or_json_must_be_asked_for_else_nothing_changes(
    quill: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    why: str,
) -> None:
    assert main(_add(tmp_path / "first.conf")) in (0, 1)  # push to the unreachable nodes fails
    capsys.readouterr()
    before = _state(quill)
    if "--json" in argv or "--quiet" in argv:  # refused on a terminal too
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"wgfleet: error: {why}")
    assert "--out -" in captured.err and len(captured.err.splitlines()) == 1
    assert _state(quill) == before


def test_out_dash_prints_exactly_the_client_config_and_json_carries_it_only_then(
    quill: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-v", "peers", "add", "quill", "--nodes", "node1", "--out", "-"]) in (0, 1)
    captured = capsys.readouterr()
    parsed = parse_wg_quick(captured.out)  # stdout is the config alone, ready to be saved
    assert parsed.interface.get("privatekey") in captured.out
    assert "configuration quill-1 for quill on node1" in captured.err
    assert _private_keys(captured.out)[0] not in captured.err

    assert main(["--json", "peers", "add", "quill", "--all-nodes", "--out", "-"]) in (0, 1)
    data = json.loads(capsys.readouterr().out)
    assert set(data["client_configs"]) == {"node1", "node2"}
    assert "PrivateKey" in data["client_configs"]["node2"]


def test_out_file_gets_the_secret_and_stdout_and_json_get_none(
    quill: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "quill.conf"
    assert main(["--json", "peers", "add", "quill", "--all-nodes", "--out", str(out)]) in (0, 1)
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert "client_configs" not in data
    files = [Path(f"{out}.node1.conf"), Path(f"{out}.node2.conf")]
    assert data["client_config_files"] == [str(f) for f in files]
    for file in files:
        assert file.stat().st_mode & 0o777 == 0o600
        for secret in _private_keys(file.read_text()):
            assert secret not in captured.out + captured.err

    assert main(["keys", "rotate", "peer", "quill-1", "--out", str(out)]) in (0, 1)
    captured = capsys.readouterr()
    assert f"client configuration written to {out}.node1.conf" in captured.out
    for secret in _private_keys(Path(f"{out}.node1.conf").read_text()):
        assert secret not in captured.out + captured.err


def test_a_terminal_is_shown_the_client_config_once(
    quill: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["peers", "add", "quill", "--nodes", "node1"]) in (0, 1)
    out = capsys.readouterr().out
    assert "shown once" in out and len(_private_keys(out)) == 2


def test_new_preshared_keys_go_to_a_file_or_where_asked(
    quill: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_add(tmp_path / "first.conf")) in (0, 1)
    capsys.readouterr()
    out = tmp_path / "psk.txt"
    assert main(["--json", "keys", "rotate", "psk", "quill-1", "--out", str(out)]) in (0, 1)
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["rotated"] == [{"configuration": "quill-1"}]
    assert data["preshared_key_file"] == str(out)
    text = out.read_text()
    assert text.startswith("# quill-1\nPresharedKey = ") and out.stat().st_mode & 0o777 == 0o600
    (key,) = _private_keys(text)
    assert key not in captured.out + captured.err
    with open_fleet(quill) as fleet:
        stored = [fleet.secrets.get(ref) for ref, _, _ in fleet.store.sealed_secrets()]
    assert stored == [key]  # the nodes' copy, sealed, and only that

    assert main(["--json", "keys", "rotate", "psk", "quill-1", "--out", "-"]) in (0, 1)
    (rotated,) = json.loads(capsys.readouterr().out)["rotated"]
    assert rotated["configuration"] == "quill-1" and len(rotated["preshared_key"]) == 44

    assert main(["-v", "keys", "rotate", "psk", "quill-1", "--out", "-"]) in (0, 1)
    captured = capsys.readouterr()
    assert captured.out.startswith("# quill-1\nPresharedKey = ")
    assert "each client must replace its PresharedKey line" in captured.err


@pytest.mark.parametrize("problem", ["open directory", "stranger's file", "missing directory"])
def test_an_out_file_that_others_could_swap_or_own_is_refused_first(
    quill: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    directory = tmp_path / "out"
    if problem != "missing directory":
        directory.mkdir()
    target = directory / "quill.conf"
    if problem == "open directory":
        directory.chmod(0o777)  # not sticky: anyone could replace the file after we wrote it
    elif problem == "stranger's file":
        target.write_text("theirs\n")
        os.chown(target, NOBODY, NOBODY)
    before = _state(quill)
    assert main(_add(target)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wgfleet: error: {target}: ") and len(err.splitlines()) == 1
    assert _state(quill) == before
    if problem == "stranger's file":
        assert target.read_text() == "theirs\n"


def test_an_own_out_file_is_replaced_and_a_sticky_directory_is_fine(
    quill: Settings, tmp_path: Path
) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    target = sticky / "quill.conf"
    target.write_text("old\n")
    assert main(_add(target)) in (0, 1)
    assert "PrivateKey" in target.read_text() and target.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("problem", ["open directory", "link"])
def test_reissue_refuses_a_directory_others_control_before_rotating(
    quill: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    assert main(_add(tmp_path / "first.conf")) in (0, 1)
    capsys.readouterr()
    before = _state(quill)
    real = tmp_path / "real"
    real.mkdir()
    out = real
    if problem == "open directory":
        real.chmod(0o777)
    else:
        out = tmp_path / "via-link"
        out.symlink_to(real)
    assert main(["keys", "reissue", "quill-1", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"wgfleet: error: {out}: ")
    assert _state(quill) == before and list(real.iterdir()) == []


def test_reissue_writes_0600_files_into_a_new_0700_directory(
    quill: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_add(tmp_path / "first.conf")) in (0, 1)
    out = tmp_path / "configs"
    assert main(["--json", "keys", "reissue", "quill-1", "--out", str(out)]) in (0, 1)
    captured = capsys.readouterr()
    assert out.stat().st_mode & 0o777 == 0o700
    written = out / "quill-1.node1.conf"
    assert written.stat().st_mode & 0o777 == 0o600
    for secret in _private_keys(written.read_text()):
        assert secret not in captured.out + captured.err


def test_an_account_export_says_a_hash_is_held_never_its_value(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.adapters.passwords import hash_password
    from orchestrator.core.models import Account

    stored = hash_password("correct horse battery")
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("rhea", stored, "dev-r"))
        fleet.store.add_account(Account("noc", "!", "noc-router"))
    assert main(["accounts", "export", "rhea"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["account"]["password_hash"] == {
        "held": True,
        "scheme": "scrypt (N=32768, r=8, p=1)",
    }
    for part in stored.split("$")[4:]:
        assert part not in out
    assert main(["accounts", "export", "noc"]) == 0
    held = json.loads(capsys.readouterr().out)["account"]["password_hash"]
    assert held == {"held": False, "scheme": None}


def test_results_that_carry_keys_leave_them_out_of_their_repr(quill: Settings) -> None:
    from orchestrator.service import keys, peers

    with open_fleet(quill, write=True) as fleet:
        created = peers.add_configuration(fleet, "quill", nodes=["node1"])
        rotated = keys.rotate_peer(fleet, created.configuration.name, grace_seconds=0)
        (psk,), _push = keys.rotate_psk(fleet, [created.configuration.name])
    for result, text in (
        (created, created.client_configs["node1"]),
        (rotated, rotated.client_configs["node1"]),
        (psk, psk.preshared_key),
    ):
        for secret in _private_keys(text) or [text]:
            assert secret not in repr(result)


def test_a_file_that_fails_after_the_change_says_how_to_get_new_keys(
    quill: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    from orchestrator.cli import secret_output
    from orchestrator.errors import UsageError

    def full_disk(path: Path, text: str, **_: object) -> None:
        raise UsageError(f"{path}: No space left on device; nothing was written")

    monkeypatch.setattr(secret_output, "write_private_text", full_disk)
    assert main(_add(tmp_path / "quill.conf")) == 1
    err = capsys.readouterr().err
    assert err == (
        f"wgfleet: error: configuration quill-1 has new keys, but {tmp_path}/quill.conf: No "
        "space left on device; nothing was written: run `wgfleet keys rotate peer quill-1 "
        "--out FILE` for new keys\n"
    )
