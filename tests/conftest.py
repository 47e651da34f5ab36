"""Shared fixtures. Unit tests need nothing; tests marked `lab` share one real lab fleet.

The lab fixture builds its own lab (name "t", subnet 198.18.32.0/20, state under a temporary
directory), so it never touches an operator's default lab, and always tears it down, also when
tests fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.settings import Settings, settings_from_mapping

LAB_NODES = 3
LAB_CLIENTS = 2


def lab_settings(base: Path, name: str, subnet: str) -> Settings:
    return settings_from_mapping(
        {
            "data_dir": str(base / "data"),
            "inventory": str(base / "inventory"),
            "lab": {"name": name, "subnet": subnet},
        },
        "test settings",
        base,
    )


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("systemd-nspawn", "debootstrap", "ip", "wireguard-go", "wg"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass(frozen=True)
class Lab:
    settings: Settings
    base: Path

    @property
    def deploy_key(self) -> Path:
        return self.settings.ssh.deploy_key

    @property
    def known_hosts(self) -> Path:
        return self.settings.ssh.known_hosts

    @property
    def config_file(self) -> Path:
        return self.base / "settings.yml"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One throwaway PostgreSQL server for the session (tests/pgserver.py); skip without it."""
    from tests.pgserver import throwaway_postgres, unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with throwaway_postgres() as url:
        yield url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = lab_unavailable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from orchestrator.service import lab as lab_service

    base = tmp_path_factory.mktemp("lab")
    # Another name and /20 let a second test run share the machine (e.g. a benchmark's lab).
    name = os.environ.get("WGFLEET_TEST_LAB_NAME", "t")
    subnet = os.environ.get("WGFLEET_TEST_LAB_SUBNET", "198.18.32.0/20")
    settings = lab_settings(base, name, subnet)
    # The same settings as a file, for tests that drive the `wgfleet` command itself.
    (base / "settings.yml").write_text(
        f"data_dir: {base / 'data'}\ninventory: {base / 'inventory'}\n"
        f"lab:\n  name: {name}\n  subnet: {subnet}\n"
    )
    try:
        lab_service.lab_up(settings, LAB_NODES, LAB_CLIENTS)
        yield Lab(settings, base)
    finally:
        lab_service.lab_down(settings)
