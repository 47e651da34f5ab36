"""Fixtures of the unit tests that need a real store: two registered nodes nobody answers for
(127.0.0.1 with no pinned host key), so every SSH attempt fails at once and nothing leaves
this machine."""

from __future__ import annotations

import base64
import ipaddress
from datetime import date
from pathlib import Path

import pytest

from orchestrator.core.models import Node
from orchestrator.service.context import open_fleet
from orchestrator.settings import Settings, settings_from_mapping


@pytest.fixture
def fresh_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A data directory of its own and no settings file: wgfleet's defaults, a new store."""
    monkeypatch.delenv("WGFLEET_CONFIG", raising=False)
    monkeypatch.setenv("WGFLEET_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    wgfleet_nodes:\n      hosts:\n"
        "        node1: {ansible_host: 127.0.0.1, wgfleet_tunnel_network: 198.19.1.0/24}\n"
        "        node2: {ansible_host: 127.0.0.1, wgfleet_tunnel_network: 198.19.2.0/24,"
        " wireguard_implementation: userspace}\n"
    )
    config = tmp_path / "settings.yml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\ninventory: {inventory}\nssh: {{connect_timeout: 2}}\n"
    )
    monkeypatch.setenv("WGFLEET_CONFIG", str(config))
    built = settings_from_mapping(
        {
            "data_dir": str(tmp_path / "data"),
            "inventory": str(inventory),
            "ssh": {"connect_timeout": 2},
        },
        str(config),
        tmp_path,
    )
    with open_fleet(built) as fleet:  # a read session: no lock file before a test plants one
        for index in (1, 2):
            fleet.store.upsert_node(unreachable_node(index))
    return built


def unreachable_node(index: int) -> Node:
    """Node ``index`` as the fixture registers it: on 127.0.0.1, which nobody answers for."""
    return Node(
        f"node{index}",
        "127.0.0.1",
        ipaddress.IPv4Network(f"198.19.{index}.0/24"),
        public_key=base64.b64encode(bytes([index]) * 32).decode(),
        key_created_on=date.today(),
    )
