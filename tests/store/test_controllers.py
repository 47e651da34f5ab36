"""The fleet's controllers in the store (SQLite and PostgreSQL): registered by public keys,
revoked for good, and a key rotation's new key following its controller."""

from __future__ import annotations

from datetime import date

import pytest

from orchestrator.adapters.store import SqlStore
from orchestrator.core.controllers import Controller
from orchestrator.errors import NotFound, StoreError


def controller(name: str, seed: str) -> Controller:
    keys = {p: f"ssh-ed25519 AAAA{seed}{p}" for p in ("deploy", "collector", "push")}
    return Controller(name, keys, date(2026, 12, 1))


def test_a_controller_is_kept_listed_and_revoked_for_good(store: SqlStore) -> None:
    store.add_controller(controller("dc2", "b"))
    store.add_controller(controller("dc1", "a"))
    assert store.controllers() == [controller("dc1", "a"), controller("dc2", "b")]
    revoked = store.revoke_controller("dc2", date(2026, 12, 3))
    assert revoked.revoked_on == date(2026, 12, 3) and not revoked.active
    # Again keeps the first day; the name stays taken.
    assert store.revoke_controller("dc2", date(2026, 12, 9)).revoked_on == date(2026, 12, 3)
    with pytest.raises(StoreError, match="dc2 exists"):
        store.add_controller(controller("dc2", "c"))
    with pytest.raises(NotFound):
        store.revoke_controller("nobody", date(2026, 12, 3))


def test_a_rotated_key_replaces_its_controllers_old_one_only(store: SqlStore) -> None:
    store.add_controller(controller("dc1", "a"))
    store.add_controller(controller("dc2", "b"))
    store.replace_controller_key("push", "ssh-ed25519 AAAAapush", "ssh-ed25519 AAAAnew")
    by_name = {c.name: c for c in store.controllers()}
    assert by_name["dc1"].keys["push"] == "ssh-ed25519 AAAAnew"
    assert by_name["dc1"].keys["deploy"] == "ssh-ed25519 AAAAadeploy"
    assert by_name["dc2"] == controller("dc2", "b")
