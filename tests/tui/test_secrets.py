"""The TUI shows a new client configuration once and writes its keys nowhere; a crash's
traceback shows no local variable (one could be a private key)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import ComposeResult
from textual.widgets import Button, Input, SelectionList, Static

from orchestrator.settings import Settings
from orchestrator.tui.app import WgfleetApp
from orchestrator.tui.widgets.dialogs import ClientConfigDialog
from tests.tui.conftest import TODAY, settle
from tests.tui.test_configurations import open_configurations


def _files_holding(base: Path, needle: bytes) -> list[Path]:
    return [p for p in base.rglob("*") if p.is_file() and needle in p.read_bytes()]


async def test_a_new_configuration_is_shown_once_and_written_nowhere(
    settings: Settings, tmp_path: Path
) -> None:
    app = WgfleetApp(settings, today=TODAY)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_configurations(pilot, "carol-1")
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        nodes = dialog.query_one("#nodes", SelectionList)
        nodes.deselect("node2")
        nodes.deselect("node3")
        dialog.query_one("#quota", Input).value = "1000"
        dialog.query_one("#ok", Button).press()
        await settle(pilot)
        shown = app.screen
        assert isinstance(shown, ClientConfigDialog)
        (text,) = shown.client_configs.values()
        assert any(text in str(s.render()) for s in shown.query(Static))
        await pilot.press("escape")
        await pilot.pause()
        # Gone once closed: no screen left that could show it again.
        assert not [s for s in app.screen_stack if isinstance(s, ClientConfigDialog)]
    secrets = {
        line.split(" = ", 1)[0]: line.split(" = ", 1)[1]
        for line in text.splitlines()
        if line.startswith(("PrivateKey", "PresharedKey"))
    }
    assert set(secrets) == {"PrivateKey", "PresharedKey"}
    # The private key is in no file (store, WAL, secrets, settings, anything under tmp_path);
    # the preshared key in none either: the store holds it sealed under the fleet secret.
    assert _files_holding(tmp_path, secrets["PrivateKey"].encode()) == []
    assert _files_holding(tmp_path, secrets["PresharedKey"].encode()) == []


class _Crashing(ClientConfigDialog):
    def compose(self) -> ComposeResult:
        # What a real crash's frame may hold (joined here, so the source line shown is not it).
        secret_local = "-".join(["PrivateKey = CANARY", "TUI", "LOCAL"])
        raise RuntimeError(f"compose failed ({len(secret_local)})")


async def test_a_crash_shows_its_traceback_without_local_variables(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = WgfleetApp(settings, today=TODAY)
    with pytest.raises(RuntimeError, match="compose failed"):
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.push_screen(_Crashing("x", {"node1": "-".join(["CANARY", "TUI", "CONFIG"])}))
            await pilot.pause()
    err = capsys.readouterr().err
    assert "RuntimeError" in err and "compose failed" in err
    assert "CANARY-TUI" not in err
