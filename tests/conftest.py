"""Shared fixtures. Unit tests need nothing; tests marked `lab` share one real lab fleet.

The lab fixture builds its own lab (name "t" on the lower half of 198.18.32.0/20, state under a
temporary directory), so it never touches an operator's default lab, and always tears it down,
also when tests fail. Every other lab name, subnet or address a test uses is derived from the
same worker space (tests/worker_space.py), so runs beside each other never collide.

`.ci/test` runs the suite in two pytest-xdist workers (`-n 2 --dist loadgroup`). Each worker
has a lab of its own (worker 1: name "u" in 198.18.16.0/20). Every test that needs a lab goes to
one of two fixed groups: "traffic" (the modules of `TRAFFIC_MODULES`, which mostly wait on real
traffic, handshakes and graces) or "ansible" (the other lab tests, which run Ansible, CPU-bound
on the controller); the two overlap instead of running one after the other. Tests that need no
lab belong to no group: xdist hands each to whichever worker is free, i.e. the one whose group
ends first. Within a group tests keep their file order, so a module that needs a bare lab
(test_lab.py) still runs before the first deploy of its worker's lab. docs/TESTING.md has the
layout and the figures.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.lab_layout import plan_layout
from orchestrator.settings import Settings, settings_from_mapping
from tests.worker_space import session_lab

LAB_NODES = 3
LAB_CLIENTS = 2

# Modules of the second group (traffic, waits); every other test is in the first.
TRAFFIC_MODULES = frozenset(
    {
        "tests/integration/test_dual_stack.py",
        "tests/integration/test_lab_inet.py",
        "tests/integration/test_leak.py",
        "tests/integration/test_node_trust.py",
        "tests/integration/test_push_delta.py",
        "tests/integration/test_push_sync.py",
        "tests/integration/test_resolver.py",
        "tests/integration/test_rotation.py",
        "tests/integration/test_secret_canary.py",
        "tests/integration/test_shards.py",
        "tests/integration/test_users_rights.py",
        "tests/integration/test_api_lab.py",
        "tests/tui/test_lab_operations.py",
    }
)


def lab_forwarders(name: str, subnet: str) -> list[str]:
    """The lab internet's authoritative server as the nodes' resolver upstream: lab nodes
    reach nothing else, and the leak test sees their queries arrive there."""
    internet = plan_layout(name, ipaddress.IPv4Network(subnet), 0, 0).internet
    return [str(address) for address in internet.addresses]


def lab_settings(base: Path, name: str, subnet: str) -> Settings:
    return settings_from_mapping(
        {
            "data_dir": str(base / "data"),
            "inventory": str(base / "inventory"),
            "lab": {"name": name, "subnet": subnet},
            # ../shared/LAB.md: lab tunnels only in fd00:198:19::/48.
            "ipv6": {"prefix": "fd00:198:19::/48"},
            "dns": {"forwarders": lab_forwarders(name, subnet)},
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


# First: xdist's own hook turns each test's xdist_group mark into its scheduling group, so
# the marks must be on the items before it runs (without them every test went its own way).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = lab_unavailable()
    if reason is not None:
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if "lab" in item.keywords:
                item.add_marker(skip)
    # In a worker xdist sets dist to "no" (the worker itself distributes nothing) and says
    # loadgroup instead; the controller has the option as given.
    if (
        not getattr(config.option, "loadgroup", False)
        and getattr(config.option, "dist", "no") != "loadgroup"
    ):
        return

    # A module of the second group goes there whole; any other test that needs a lab goes to
    # the first. A test without a lab gets no group: xdist hands such tests one by one to the
    # worker that runs out of group work first, so they fill the shorter group's tail.
    def group(item: pytest.Item) -> str | None:
        if item.nodeid.split("::")[0] in TRAFFIC_MODULES:
            return "traffic"
        if "lab" in item.keywords or "lab" in getattr(item, "fixturenames", ()):
            return "ansible"
        return None

    for item in items:
        name = group(item)
        if name is not None:
            item.add_marker(pytest.mark.xdist_group(name))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from orchestrator.service import lab as lab_service

    base = tmp_path_factory.mktemp("lab")
    name, subnet = session_lab()
    settings = lab_settings(base, name, subnet)
    # The same settings as a file, for tests that drive the `wgfleet` command itself.
    (base / "settings.yml").write_text(
        f"data_dir: {base / 'data'}\ninventory: {base / 'inventory'}\n"
        f"lab:\n  name: {name}\n  subnet: {subnet}\nipv6:\n  prefix: fd00:198:19::/48\n"
        f"dns:\n  forwarders: {json.dumps(lab_forwarders(name, subnet))}\n"
    )
    try:
        lab_service.lab_up(settings, LAB_NODES, LAB_CLIENTS)
        yield Lab(settings, base)
    finally:
        lab_service.lab_down(settings)


def deploy_fleet(settings: Settings, **options: Any) -> Any:
    """A deploy in a writing session of its own (what `wgfleet deploy` runs)."""
    from orchestrator.service import deploy as deploy_service
    from orchestrator.service.context import open_fleet

    with open_fleet(settings, write=True, operation="deploy") as fleet:
        return deploy_service.deploy(fleet, **options)


def audit_fleet(settings: Settings, **options: Any) -> Any:
    """An audit in a writing session of its own (what `wgfleet audit` runs)."""
    from orchestrator.service import audit as audit_service
    from orchestrator.service.context import open_fleet

    with open_fleet(settings, write=True, operation="audit") as fleet:
        return audit_service.audit(fleet, **options)
