"""The node's `wgfleet-diag` entry point (roles/diagnostics/files), with a test config, tried
here where it can be without systemd: its view never shows the interface's private key or a preshared key,
its status reads an absent diagnostic, and it refuses bad input. Start and expiry run on the
lab (tests/integration/test_diagnostics.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.node_programs import DIAG, load, write_config

PRIVATE, PSK = (
    "cHJpdmF0ZWtleXByaXZhdGVrZXlwcml2YXRla2V5MTI=",
    "cHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrcHNrMTI=",
)
PEER_A, PEER_B = "A" * 42 + "E=", "B" * 42 + "g="


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "diag.json",
        {
            "run_dir": str(tmp_path / "run"),
            "max_seconds": 3600,
            "view_interval": 1,
            "wg_binary": "/nonexistent/wg",
            "program": str(DIAG),
        },
    )


def run(config: Path, *argv: str) -> tuple[int, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}
    env["WGFLEET_DIAG_CONFIG"] = str(config)
    result = subprocess.run(
        [sys.executable, str(DIAG), *argv], capture_output=True, text=True, check=False, env=env
    )
    return result.returncode, json.loads(result.stdout)


def test_the_view_drops_the_private_key_and_preshared_keys() -> None:
    dump = (
        f"{PRIVATE}\tPUBLIC=\t51820\toff\n"
        f"{PEER_A}\t{PSK}\t198.18.0.50:40000\t198.19.1.2/32\t1764560000\t100\t200\toff\n"
        f"{PEER_B}\t(none)\t(none)\t198.19.1.3/32\t0\t0\t0\toff\n"
    )
    diag = load(DIAG, "wgfleet_diag")
    both = diag.render(dump, None)
    assert PRIVATE not in both and PSK not in both
    assert f"{PEER_A}\t198.18.0.50:40000\t198.19.1.2/32\t1764560000\t100\t200\toff" in both
    one = diag.render(dump, PEER_B)
    assert PEER_A not in one and PEER_B in one


def test_status_without_a_diagnostic_and_bad_input(config: Path) -> None:
    assert run(config, "status") == (0, {"active": False})
    assert run(config, "stop") == (0, {"active": False, "stopped": False})
    code, answer = run(config, "start", "99999", "wg0")
    assert code == 2 and "duration must be 1..3600" in answer["error"]
    code, answer = run(config, "start", "60", "nosuchif0")
    assert code == 2 and "no interface" in answer["error"]
    code, answer = run(config, "start", "x", "wg0")
    assert code == 2 and "whole number" in answer["error"]
    code, answer = run(config, "bogus")
    assert code == 2 and answer["error"].startswith("usage")


def test_what_leaves_the_node_holds_no_endpoint_and_no_handshake_time(config: Path) -> None:
    diag = load(DIAG, "wgfleet_diag")
    view = (
        "public_key\tendpoint\tallowed_ips\tlatest_handshake\trx\ttx\tkeepalive\n"
        f"{PEER_A}\t198.18.0.50:40000\t198.19.1.2/32\t1764560000\t100\t200\toff\n"
        f"{PEER_B}\t(none)\t198.19.1.3/32\t0\t0\t0\toff\n"
    )
    shown = diag.summary(view, 1764560100)
    assert "198.18.0.50" not in shown and "1764560000" not in shown
    assert f"{PEER_A}\tyes\tyes\t100\t200" in shown
    assert f"{PEER_B}\tno\tno\t0\t0" in shown
    assert f"{PEER_A}\tyes\tno\t100\t200" in diag.summary(view, 1764560000 + 181)
