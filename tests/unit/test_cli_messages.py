"""What commands say: the same byte units everywhere, nothing on stderr after a success without
-v, everything the session did with -v, and no placeholder shown as if it were a value."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core.models import Account
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings


@pytest.fixture
def ann(settings: Settings) -> Settings:
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("ann", "scrypt$a", "dev-a"))
    return settings


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()  # what earlier commands printed
    assert main(["--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("written", "size"),
    [("10GiB", 10 * 2**30), ("500MB", 500 * 10**6), ("4096", 4096), ("1 TiB", 2**40)],
)
def test_byte_amounts_take_the_fleet_files_units_in_every_command(
    ann: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], written: str, size: int
) -> None:
    assert main(["plans", "set", "p", "--quota", written]) == 0
    plans = run_json(capsys, "plans", "list")
    assert [p["quota_bytes"] for p in plans] == [size]  # type: ignore[union-attr,index]
    out = tmp_path / "ann.conf"
    # The nodes here are unreachable: the push fails (exit 1) after the store took the change.
    assert main(["peers", "add", "ann", "--nodes", "node1", "--quota", written, "--out", str(out)])
    shown = run_json(capsys, "peers", "show", "ann-1")
    assert shown["quota_bytes"] == size  # type: ignore[index]
    code = main(["topup", "ann-1", "--bytes", written, "--amount", "1", "--invoice", "INV-1"])
    assert code == 0


@pytest.mark.parametrize("flag", ["--quota", "--bytes"])
def test_a_size_in_no_known_unit_is_refused_naming_the_value(
    ann: Settings, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    argv = (
        ["plans", "set", "p", "--quota", "10 parsecs"]
        if flag == "--quota"
        else ["topup", "x", "--bytes", "10 parsecs", "--amount", "1", "--invoice", "I"]
    )
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "'10 parsecs': a size such as 10GiB, 500MB or a number of bytes" in (
        capsys.readouterr().err
    )


def test_a_successful_run_keeps_stderr_empty_and_v_says_what_it_did(
    ann: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for argv in (
        ["plans", "set", "p", "--quota", "1GiB"],
        ["accounts", "export", "ann", "-o", str(tmp_path / "ann.json")],
        ["accounts", "list"],
        ["usage", "list"],
    ):
        assert main(argv) == 0
        assert capsys.readouterr().err == "", argv
    assert main(["-v", "plans", "set", "q", "--quota", "2GiB"]) == 0
    assert capsys.readouterr().err == "plan q saved\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("a password\n"))
    assert main(["-v", "accounts", "add", "bob", "--device-id", "d", "--password-stdin"]) == 0
    assert "account bob added" in capsys.readouterr().err


def test_an_unmetered_configuration_shows_no_period_start(
    ann: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["peers", "add", "ann", "--nodes", "node1", "--out", str(tmp_path / "a.conf")])
    capsys.readouterr()
    rows = run_json(capsys, "usage", "list")
    assert [(r["configuration"], r["period_start"]) for r in rows] == [("ann-1", None)]  # type: ignore[index,union-attr]
    assert main(["usage", "list"]) == 0
    table = capsys.readouterr().out
    assert "never resets" in table and "1970" not in table
