"""Which controllers' keys the nodes get (core.controllers): the other active controllers'
beside the running one's own, a revoked controller's removed, nothing twice."""

from __future__ import annotations

import base64
from datetime import date

import pytest

from orchestrator.core.controllers import (
    Controller,
    authorized_controllers,
    check_controller_name,
    check_new_controller,
    key_line,
    leftover_keys,
)
from orchestrator.core.errors import InvalidInput

DAY = date(2026, 12, 1)


def keys(seed: str) -> dict[str, str]:
    return {p: f"ssh-ed25519 {_blob(seed + p)}" for p in ("deploy", "collector", "push")}


def _blob(text: str) -> str:
    return base64.b64encode(text.encode().ljust(32, b"k")).decode()


def test_the_nodes_get_the_other_active_controllers_keys_and_lose_the_revoked_ones() -> None:
    own = keys("a")
    registered = [
        Controller("dc1", own, DAY),
        Controller("dc2", keys("b"), DAY),
        Controller("stolen", keys("c"), DAY, revoked_on=DAY),
    ]
    granted = authorized_controllers(registered, own)
    assert granted.extra == {p: (keys("b")[p],) for p in ("deploy", "collector", "push")}
    assert granted.revoked == {p: (keys("c")[p],) for p in ("deploy", "collector", "push")}


def test_a_key_both_active_and_revoked_is_refused_and_own_keys_are_never_removed() -> None:
    own = keys("a")
    registered = [
        Controller("copy", keys("c"), DAY),
        Controller("stolen", keys("c"), DAY, revoked_on=DAY),
        Controller("self-revoked", own, DAY, revoked_on=DAY),
    ]
    granted = authorized_controllers(registered, own)
    assert all(not extra for extra in granted.extra.values())
    assert granted.revoked["push"] == (keys("c")["push"],)


def test_a_new_controller_brings_keys_of_its_own() -> None:
    existing = [Controller("dc1", keys("a"), DAY, revoked_on=DAY)]
    with pytest.raises(InvalidInput, match="already controller dc1's push key"):
        check_new_controller(
            existing, Controller("dc2", {**keys("b"), "push": keys("a")["push"]}, DAY)
        )
    same = dict.fromkeys(("deploy", "collector", "push"), keys("x")["push"])
    with pytest.raises(InvalidInput, match="must differ"):
        check_new_controller([], Controller("dc3", same, DAY))
    check_new_controller(existing, Controller("dc2", keys("b"), DAY))


def test_names_and_key_lines_are_checked() -> None:
    with pytest.raises(InvalidInput, match="controller name"):
        check_controller_name("DC 1")
    assert key_line("ssh-ed25519 AAAAb3 wgfleet-push\n", "f.pub") == "ssh-ed25519 AAAAb3"
    with pytest.raises(InvalidInput, match=r"f\.pub: not an OpenSSH public key"):
        key_line("hello world", "f.pub")
    with pytest.raises(InvalidInput, match="one OpenSSH public key line, not 2"):
        key_line("ssh-ed25519 AAAA\nssh-ed25519 BBBB", "f.pub")


def test_leftover_keys_are_found_behind_forced_command_options() -> None:
    gone = Controller("stolen", keys("c"), DAY, revoked_on=DAY)
    text = f'restrict,command="sudo -n /x" {keys("c")["push"]}\n{keys("a")["deploy"]}\n'
    left = leftover_keys(text, gone)
    assert len(left) == 1 and left[0].startswith("push SHA256:")
    assert leftover_keys(keys("a")["deploy"] + "\n", gone) == []
