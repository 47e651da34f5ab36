"""`wgfleet serve` as an operator runs it: a process listening on loopback, answering with the
seeded store's data, silent on stderr, stopped cleanly by SIGTERM (killed by PID on failure)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from orchestrator.core.tokens import Scope
from tests.server.conftest import Template
from tests.tui.conftest import make_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_on_its_listen_address_and_stops_on_sigterm(
    template: Template, tmp_path: Path
) -> None:
    shutil.copytree(template.base / "data", tmp_path / "data", symlinks=True)
    make_settings(tmp_path)  # writes tmp_path/settings.yml naming that data directory
    port = free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("wgfleet")),
            "--config",
            str(tmp_path / "settings.yml"),
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # readiness: the port accepts a connection
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "wgfleet serve did not listen"
                time.sleep(0.05)
        token = template.tokens[Scope.READ.value]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get("/v1/openapi.json").status_code == 200
            plans = client.get("/v1/plans")
        assert [p["name"] for p in plans.json()] == ["basic"]
        # /metrics: the fleet's real exposition, for the metrics scope only.
        metrics_token = template.tokens[Scope.METRICS.value]
        scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
        assert scraped.status_code == 200
        assert "wgfleet_store_up 1.0" in scraped.text
        assert 'wgfleet_failures_total{kind="' in scraped.text
        refused = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # uvicorn shuts down gracefully, then lets SIGTERM end the process as the signal's default
    # does: what systemd counts as a clean stop.
    assert process.returncode == -signal.SIGTERM
    assert err == ""
    assert out == f"wgfleet serve: http://127.0.0.1:{port}/v1 (Ctrl-C stops)\n"
