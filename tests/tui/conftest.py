"""A real SQLite store in tmp_path, seeded with fixed data, and helpers to drive the TUI.

Nodes sit at addresses never reached (tests/worker_space.py) and the settings pin no known_hosts file, so every push fails
at once on every node, without touching the network: the store changes as the CLI's would,
and the TUI must show the failed push as a notification.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from textual.pilot import Pilot
from textual.screen import Screen

from orchestrator.core.models import (
    Account,
    Configuration,
    DisabledReason,
    Plan,
    ResetRule,
    TopUp,
)
from orchestrator.service import peers
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings, settings_from_mapping
from orchestrator.tui.app import WgfleetApp
from tests.seeded_store import TODAY, add_configuration, add_nodes, key


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (Textual's pilot is async); no plugin."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


GIB = 2**30


# Pinned nowhere: every SSH connection is refused before any packet, with the same words.
KNOWN_HOSTS = "/nonexistent/wgfleet-tests/known_hosts"


def shown_address(index: int) -> str:
    """A node address the screens show, the same for every test worker (the snapshots hold
    it): never reached, as the settings pin no host key and so no packet leaves for it."""
    return f"198.18.255.{index}"


def make_settings(base: Path) -> Settings:
    """Settings for a store under ``base``, and the same as a file for the CLI."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "settings.yml").write_text(
        f"data_dir: {base / 'data'}\ninventory: {base / 'inventory'}\n"
        f"ssh:\n  connect_timeout: 1\n  known_hosts: {KNOWN_HOSTS}\n"
    )
    return settings_from_mapping(
        {
            "data_dir": str(base / "data"),
            "inventory": str(base / "inventory"),
            "ssh": {"connect_timeout": 1, "known_hosts": KNOWN_HOSTS},
        },
        "test settings",
        base,
    )


def dump(settings: Settings) -> dict[str, Any]:
    """Everything the store holds that an action may change."""
    with open_fleet(settings, write=True) as fleet:
        store = fleet.store
        return {
            "accounts": [(a.username, a.device_id, a.contact) for a in store.accounts()],
            "configurations": [
                (
                    c.name,
                    c.account,
                    c.public_key,
                    c.enabled,
                    c.disabled_reason,
                    c.plan,
                    c.quota_bytes,
                    dict(c.addresses),
                )
                for c in store.configurations()
            ],
            "topups": store.topups(),
            "usage": store.usage(),
            "totals": store.running_totals(),
            "revisions": store.node_revisions(),
            "health": store.node_health(),
        }


def seed(settings: Settings, extra: int = 0) -> None:
    """Three nodes, a plan, three accounts with five configurations; ``extra`` more accounts
    with one configuration each (for the 5,000-row tests)."""
    with open_fleet(settings, write=True) as fleet:
        store = fleet.store
        with store.transaction():
            add_nodes(store, [date(2024, 1, 1 + 10 * i) for i in range(3)], shown_address)
            store.upsert_plan(Plan("basic", 10 * GIB, ResetRule.MONTHLY, 1, "4.99"))
        peers.add_account(fleet, "alice", "password-a", "device-a", "+10000000001")
        peers.add_account(fleet, "bob", "password-b", "device-b")
        peers.add_account(fleet, "carol", "password-c", "device-c")

        with store.transaction():
            add_configuration(store, "alice-1", "alice", 1, ["node1", "node2"], plan="basic")
            add_configuration(store, "alice-2", "alice", 2, ["node3"], quota_bytes=GIB)
            add_configuration(store, "bob-1", "bob", 3, ["node1"], quota_bytes=2 * GIB)
            add_configuration(
                store,
                "bob-2",
                "bob",
                4,
                ["node2"],
                enabled=False,
                disabled_reason=DisabledReason.OPERATOR,
            )
            add_configuration(store, "carol-1", "carol", 5, ["node1", "node2", "node3"])
            store.add_usage("alice-1", date(2024, 5, 1), 3 * GIB, GIB)
            store.add_usage("alice-2", date(1970, 1, 1), GIB, GIB // 2)
            store.add_usage("bob-1", date(1970, 1, 1), GIB // 4, GIB // 4)
            store.add_usage("carol-1", date(1970, 1, 1), 123_456_789, 0)
            store.add_topup(TopUp("INV-1", "alice-2", "1.99", GIB // 2, date(2024, 4, 2)))
            store.add_topup(TopUp("INV-2", "bob-1", "2.99", GIB, date(2024, 5, 3)))
            for i in range(extra):
                username = f"user{i:05d}"
                store.add_account(Account(username, "scrypt$x", f"dev-{i:05d}"))
                node = f"node{i % 3 + 1}"
                store.add_configuration(
                    Configuration(
                        f"{username}-1",
                        username,
                        key(10_000 + i),
                        None,
                        {node: ipaddress.IPv4Address("198.19.64.0") + i},
                        quota_bytes=GIB,
                        key_created_on=TODAY,
                    )
                )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "tui")
    seed(settings)
    return settings


NOON = int(datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC).timestamp())


def seed_alerts(settings: Settings) -> None:
    """On top of ``seed``: a fleet raising every kind of dashboard alert (core.alerts), ages
    counted from noon UTC of TODAY (the TUI's clock when today is fixed). Unreachable comes
    from the reachability check itself: the settings pin no known_hosts file."""
    from orchestrator.adapters.store.ledger import RowUsage

    with open_fleet(settings, write=True) as fleet:
        store = fleet.store
        store.replace_policies({"keys.node_max_age_days": "120"})  # node1, node2 overdue
        store.mark_sync_failed(["node2"])
        for node, synced_at in (("node1", NOON - 2 * 86400), ("node3", NOON - 120)):
            store.apply_accounting(RowUsage([], [], [], []), {}, [node], synced_at)  # 1 stale
        store.mark_audited({"node1": True, "node3": False})
        store.mark_pushed("node3", store.node_revisions()["node3"][0], True)
        store.add_usage("alice-1", date(2024, 5, 1), 4 * GIB, GIB // 2)  # 85%: near quota
        store.set_valid_until("carol-1", date(2024, 5, 18))  # expiring within 7 days


@pytest.fixture
def alerting(settings: Settings) -> Settings:
    seed_alerts(settings)
    return settings


@dataclass
class Notes:
    seen: list[tuple[str, str, str]]  # (severity, title, message)

    def having(self, text: str, severity: str | None = None) -> list[tuple[str, str, str]]:
        return [
            n
            for n in self.seen
            if (text in n[1] or text in n[2]) and (severity is None or n[0] == severity)
        ]


def record_notifications(app: WgfleetApp) -> Notes:
    notes = Notes([])
    original: Callable[..., None] = app.notify

    def notify(message: str, *, title: str = "", severity: str = "information", **kw: Any) -> None:
        notes.seen.append((severity, title, message))
        original(message, title=title, severity=severity, **kw)  # type: ignore[arg-type]

    app.notify = notify  # type: ignore[method-assign]
    return notes


async def settle(pilot: Any) -> None:
    """Let every worker finish and the UI catch up with what they reported."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


ScreenT = TypeVar("ScreenT", bound=Screen[None])


@asynccontextmanager
async def running_app(
    settings: Settings, *, size: tuple[int, int] = (80, 24), today: date | None = TODAY
) -> AsyncIterator[tuple[WgfleetApp, Pilot[None], Notes]]:
    """The app under Textual's pilot, its notifications recorded."""
    app = WgfleetApp(settings, today=today)
    notes = record_notifications(app)
    async with app.run_test(size=size) as pilot:
        yield app, pilot, notes


async def switch_to(pilot: Pilot[None], key: str, screen_type: type[ScreenT]) -> ScreenT:
    """Press a screen's number key once the first screen has loaded; the screen it shows."""
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, screen_type)
    return screen


@pytest.fixture
def twins(tmp_path: Path) -> tuple[Settings, Settings]:
    """Two stores seeded alike: the TUI acts on the first, the CLI on the second."""
    tui, cli = make_settings(tmp_path / "tui"), make_settings(tmp_path / "cli")
    seed(tui)
    seed(cli)
    return tui, cli


def run_cli(settings: Settings, *args: str) -> int:
    from orchestrator.cli import main

    return main(["--config", str(Path(settings.data_dir).parent / "settings.yml"), *args])
