"""Deploy's live per-node view, cancel and result, with ansible-runner replaced by a script of
events (the lab tests run the real thing); and the per-node log."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from textual.widgets import DataTable, Label, RichLog, Static

from orchestrator.adapters.ansible import PlaybookRun
from orchestrator.core.playbook_events import PlayRecap, apply_event
from orchestrator.service import deploy as deploy_service
from orchestrator.service.deploy import DeployResult
from orchestrator.service.lock import fleet_lock
from orchestrator.settings import Settings
from orchestrator.tui.app import WgfleetApp
from orchestrator.tui.screens.operations import OperationsScreen
from tests.tui.conftest import TODAY, running_app, settle, switch_to

EVENTS = [
    {"event": "runner_on_start", "event_data": {"host": "node1", "task": "nolog : journald"}},
    {"event": "runner_on_ok", "event_data": {"host": "node1", "task": "nolog : journald"}},
    {"event": "runner_on_start", "event_data": {"host": "node2", "task": "nolog : journald"}},
    {
        "event": "runner_on_unreachable",
        "event_data": {"host": "node2", "task": "Gathering Facts", "res": {"msg": "timed out"}},
    },
]


def fake_deploy(
    gate: threading.Event | None = None,
) -> Callable[..., DeployResult]:
    def deploy(
        settings: Settings,
        *,
        on_update: Callable[[PlayRecap, Mapping[str, Any]], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        **_: Any,
    ) -> DeployResult:
        recap = PlayRecap()
        for event in EVENTS:
            recap = apply_event(recap, event)
            assert on_update is not None
            on_update(recap, event)
        status = "failed"
        if gate is not None:
            assert cancelled is not None
            while not cancelled():  # until the operator cancels
                gate.wait(0.01)
            status = "canceled"
        return DeployResult(PlaybookRun("site.yml", status, 2, recap, False))

    return deploy


async def open_operations(pilot: Any) -> OperationsScreen:
    return await switch_to(pilot, "4", OperationsScreen)


async def test_deploy_shows_each_node_live_and_names_the_unreachable(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(deploy_service, "deploy", fake_deploy())
    async with running_app(settings, size=(160, 48)) as (_app, pilot, notes):
        screen = await open_operations(pilot)
        await pilot.press("d")
        await settle(pilot)
        rows = {
            str(r[0]): [str(c) for c in r[1:]]
            for r in (
                screen.query_one("#operation-nodes", DataTable).get_row_at(i)
                for i in range(screen.query_one("#operation-nodes", DataTable).row_count)
            )
        }
        assert rows["node1"][0] == "running"
        # At 80 columns the detail keeps its first whole words; the log and summary hold it all.
        assert rows["node2"] == ["failed", "unreachable: Gathering Facts:…"]
        assert str(screen.query_one("#summary-title", Label).render()) == "deploy: 1 failure(s)"
        assert "node2: unreachable: Gathering Facts: timed out" in str(
            screen.query_one("#summary", Static).render()
        )
        assert notes.having("node2: unreachable", "error")


async def test_deploy_can_be_cancelled(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    gate = threading.Event()
    monkeypatch.setattr(deploy_service, "deploy", fake_deploy(gate))
    async with running_app(settings) as (_app, pilot, notes):
        screen = await open_operations(pilot)
        await pilot.press("d")
        await pilot.pause(0.2)
        assert screen.worker is not None and screen.worker.is_running
        await pilot.press("s")  # one run at a time
        assert notes.having("deploy is still running", "warning")
        await pilot.press("c")
        await settle(pilot)
        assert str(screen.query_one("#summary-title", Label).render()).startswith("deploy:")
        assert "canceled" in str(screen.query_one("#summary", Static).render())


async def test_deploy_waits_for_nobody_when_the_lock_is_held(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(deploy_service, "deploy", fake_deploy())
    async with running_app(settings) as (_app, pilot, notes):
        screen = await open_operations(pilot)
        with fleet_lock(settings):
            await pilot.press("d")
            await settle(pilot)
        assert notes.having("fleet busy", "warning")
        assert str(screen.query_one("#summary-title", Label).render()) == "deploy: did not run"


async def test_the_log_shows_every_node_or_one(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(deploy_service, "deploy", fake_deploy())
    app = WgfleetApp(settings, today=TODAY)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_operations(pilot)
        await pilot.press("d")
        await settle(pilot)
        log = screen.query_one(RichLog)
        assert {line.text.split(":")[0] for line in log.lines} == {"node1", "node2"}
        screen.query_one("#operation-nodes", DataTable).focus()
        await pilot.press("l")  # the highlighted node: node1, the first row
        await pilot.pause()
        assert {line.text.split(":")[0] for line in log.lines} == {"node1"}
        await pilot.press("down")
        await pilot.pause()
        assert {line.text.split(":")[0] for line in log.lines} == {"node2"}
        await pilot.press("l")
        await pilot.pause()
        assert {line.text.split(":")[0] for line in log.lines} == {"node1", "node2"}
