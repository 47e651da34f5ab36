"""The lab internet's nsd configuration and zone: only the lab's addresses and directory, and
both accepted by nsd's own checkers."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.core.lab_dns import render_nsd_conf, render_zone, zone_file_name
from orchestrator.core.lab_layout import lab_internet

INTERNET = lab_internet("li", ipaddress.IPv4Network("198.18.144.0/20"))


def test_nsd_listens_only_on_the_lab_internet_and_keeps_every_file_in_the_lab(
    tmp_path: Path,
) -> None:
    conf = render_nsd_conf(INTERNET, tmp_path)
    assert re.findall(r"ip-address: (\S+)", conf) == ["198.18.144.2", "2001:2:0:19:8000::2"]
    paths = re.findall(r'(?:dir|file|pidfile|zonesdir|database): "([^"]*)"', conf)
    # Absolute paths inside the lab's directory; the zone file's bare name is relative to it.
    inside = [p == "" or Path(p).is_relative_to(tmp_path) or "/" not in p for p in paths]
    assert len(paths) >= 7 and all(inside), paths
    for default in ("/etc/nsd", "/var/lib/nsd", "/run/nsd"):
        assert default not in conf
    assert "control-enable: no" in conf


def test_every_name_of_the_zone_answers_with_the_lab_internet() -> None:
    zone = render_zone(INTERNET)
    for label in ("@", "ns", "echo", "*"):
        assert f"{label}\tIN\tA\t198.18.144.2\n" in zone
        assert f"{label}\tIN\tAAAA\t2001:2:0:19:8000::2\n" in zone


@pytest.mark.skipif(shutil.which("nsd-checkconf") is None, reason="nsd is not installed")
def test_nsd_accepts_the_configuration_and_the_zone(tmp_path: Path) -> None:
    (tmp_path / "nsd.conf").write_text(render_nsd_conf(INTERNET, tmp_path))
    zone_file = tmp_path / zone_file_name(INTERNET)
    zone_file.write_text(render_zone(INTERNET))
    conf = subprocess.run(
        ["nsd-checkconf", str(tmp_path / "nsd.conf")], capture_output=True, text=True
    )
    assert conf.returncode == 0, conf.stderr
    zone = subprocess.run(
        ["nsd-checkzone", INTERNET.zone, str(zone_file)], capture_output=True, text=True
    )
    assert zone.returncode == 0, zone.stdout + zone.stderr
