"""`lab down` leaves the machine as it found it, also after a crash lost the lab's records."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.adapters.lab import network
from orchestrator.core.lab_layout import machine_prefix, name_prefix, netns_prefix
from orchestrator.service import lab as lab_service
from orchestrator.settings import Settings
from tests.conftest import lab_settings
from tests.worker_space import derived_lab

pytestmark = pytest.mark.lab


def footprint(settings: Settings) -> dict[str, set[str]]:
    """Every namespace, mount, link and process on the host that belongs to this lab."""
    lab = settings.lab.name
    state = str(settings.lab.state_dir)
    namespaces = {n for n in network.netns_list() if n.startswith(netns_prefix(lab))}
    with open("/proc/self/mountinfo") as mountinfo:
        mounts = {line.split()[4] for line in mountinfo if state in line}
    links = {link for link in os.listdir("/sys/class/net") if link.startswith(name_prefix(lab))}
    processes = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if stat != "Z" and (
            machine_prefix(lab) in args or name_prefix(lab) in args or state in args
        ):
            processes.add(f"{entry.name} {args}")
    return {"namespaces": namespaces, "mounts": mounts, "links": links, "processes": processes}


# footprint() of a lab that is down and left nothing behind.
NOTHING_LEFT: dict[str, set[str]] = {
    "namespaces": set(),
    "mounts": set(),
    "links": set(),
    "processes": set(),
}


def everything(settings: Settings) -> dict[str, set[str]]:
    with open("/proc/self/mountinfo") as mountinfo:
        mounts = {line.split()[4] for line in mountinfo}
    return {"namespaces": set(network.netns_list()), "mounts": mounts}


@pytest.fixture
def small_lab(tmp_path: Path):
    settings = lab_settings(tmp_path, *derived_lab("lifecycle"))
    try:
        yield settings
    finally:
        lab_service.lab_down(settings)


def test_lab_down_removes_everything_it_made(small_lab: Settings) -> None:
    before = everything(small_lab)
    assert footprint(small_lab) == NOTHING_LEFT
    lab_service.lab_up(small_lab, 2, 1)
    made = footprint(small_lab)
    assert len(made["namespaces"]) == 4  # 2 nodes, 1 client, the lab internet
    assert len(made["mounts"]) == 2
    assert len(made["processes"]) >= 2

    lab_service.lab_down(small_lab)
    assert footprint(small_lab) == NOTHING_LEFT
    after = everything(small_lab)
    # Other labs (an operator's, the other xdist worker's) may come and go meanwhile; nothing
    # of ours may be new.
    ours = machine_prefix(small_lab.lab.name)
    assert not {
        n
        for n in after["namespaces"] - before["namespaces"]
        if n.startswith(netns_prefix(small_lab.lab.name))
    }
    assert after["mounts"] - before["mounts"] <= {
        m for m in after["mounts"] if f"/{ours}" not in m and str(small_lab.lab.state_dir) not in m
    }
    if "/run/netns" not in before["mounts"]:
        # `ip` bind-mounts /run/netns for the first namespace; the lab undoes what it caused.
        assert "/run/netns" not in after["mounts"]
    assert not (small_lab.inventory / "hosts.yml").exists()
    lab_service.lab_down(small_lab)  # twice is fine


def test_lab_down_after_a_crash_that_lost_the_records(small_lab: Settings) -> None:
    lab_service.lab_up(small_lab, 1, 1)
    (small_lab.lab.state_dir / "lab.json").unlink()  # as if `lab up` died before writing it
    assert footprint(small_lab)["processes"]
    lab_service.lab_down(small_lab)
    assert footprint(small_lab) == NOTHING_LEFT


def test_cli_lab_without_root_privileges_is_a_clear_error() -> None:
    wgfleet = Path(sys.executable).with_name("wgfleet")
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(wgfleet), "lab", "up"],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env={**os.environ, "HOME": "/nonexistent"},
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip().splitlines() == [
        "wgfleet: error: the lab needs root (namespaces, mounts and cgroups)"
    ]
