"""The `--metrics` endpoint of a real `wgfleet sync --every` process on the lab fleet.

A configuration carries real traffic through node1 and node2; a change is left pending so
the loop's sync pushes too; the test scrapes the running process over HTTP as Prometheus
would, checks the values against the lab, and scans the whole exposition for every name,
key and address of the lab's users: none may be there. The process is started and stopped
by its PID, also when the test fails.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.core.models import DisabledReason
from orchestrator.service import lab as lab_service
from orchestrator.service import peers as peers_service
from orchestrator.service.context import Fleet
from tests.conftest import LAB_NODES, Lab
from tests.integration.fleet_lab import WGFLEET, account, ping

pytestmark = pytest.mark.lab

ADDRESS = re.compile(r"^Address\s*=\s*(.+)$", re.MULTILINE)


class Loop:
    """A `wgfleet sync --every` process: its stdout lines (one JSON line per run) and
    stderr lines, read as they come."""

    def __init__(self, lab: Lab) -> None:
        argv = [WGFLEET, "--config", str(lab.config_file), "--json", "-v", "sync"]
        argv += ["--every", "2s", "--metrics", "127.0.0.1:0"]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.runs: list[dict[str, object]] = []
        self.errors: list[str] = []
        self.changed = threading.Condition()
        for stream, sink in ((self.process.stdout, self.runs), (self.process.stderr, None)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()

    def _read(self, stream, sink) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            with self.changed:
                if sink is None:
                    self.errors.append(line.rstrip("\n"))
                else:
                    sink.append(json.loads(line))
                self.changed.notify_all()

    def wait_for(self, ready, timeout: float = 180):  # type: ignore[no-untyped-def]
        """Block until ``ready()`` gives a value (each new line wakes it), or fail."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while (value := ready()) is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    pytest.fail(f"sync --every: {self.errors[-5:]} (exit {self.process.poll()})")
                self.changed.wait(min(left, 1.0))
        return value

    def url(self) -> str:
        def announced() -> str | None:
            for line in self.errors:
                found = re.search(r"metrics on (http://\S+/metrics)", line)
                if found:
                    return found.group(1)
            return None

        return str(self.wait_for(announced))

    def stop(self) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise


def scrape(url: str) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        body = answer.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    return body, samples


def users_data(fleet: Fleet, lab: Lab, client_configs: list[str]) -> set[str]:
    """Every username, configuration name, public and preshared key, and client, tunnel and
    underlay address of the lab fleet's users (the store's and the lab's)."""
    store = fleet.store
    found: set[str] = set()
    for a in store.accounts():
        found.update(v for v in (a.username, a.device_id, a.contact) if v)
    for c in store.configurations():
        found.update(v for v in (c.name, c.public_key, c.previous_public_key) if v)
        for ref in (c.psk_ref, c.previous_psk_ref):
            if ref:
                found.add(fleet.secrets.get(ref))
        found.update(str(address) for address in c.addresses.values())
    for n in store.nodes():
        found.update(v for v in (n.public_key, n.next_public_key, n.address) if v)
    for text in client_configs:
        for line in ADDRESS.findall(text):
            for cidr in line.split(","):
                found.add(str(ipaddress.ip_interface(cidr.strip()).ip))
    return found


def test_a_running_sync_loop_serves_the_fleet_metrics_and_no_user_data(
    lab: Lab, layout, fleet: Fleet
) -> None:
    started = int(time.time())
    account(fleet, "metrics-user")
    made = peers_service.add_configuration(
        fleet, "metrics-user", nodes=["node1", "node2"], name="metrics-phone"
    )
    other = peers_service.add_configuration(
        fleet, "metrics-user", nodes=["node3"], name="metrics-laptop"
    )
    assert made.push.ok and other.push.ok
    client = layout.clients[0]
    lab_service.tunnel_up(lab.settings, client.name, made.client_configs["node1"])
    loop: Loop | None = None
    try:
        assert ping(client.netns, str(layout.nodes[0].tunnel_address), count=5)
        # Off in the store only: node3 is pending, and the loop's first sync pushes it.
        fleet.store.set_enabled(["metrics-laptop"], False, DisabledReason.OPERATOR)
        loop = Loop(lab)
        url = loop.url()
        assert url.startswith("http://127.0.0.1:")
        first = loop.wait_for(lambda: loop.runs[0] if loop.runs else None)
        assert first["nodes_failed"] == {}, first
        assert first["bytes_added"] > 0  # the pings, counted
        body, samples = scrape(url)
    finally:
        lab_service.tunnel_down(lab.settings, client.name)
        if loop is not None:
            assert loop.stop() == 0
            # Nothing but the address it listens on: no access log, no client's address.
            assert loop.errors == [line for line in loop.errors if "metrics on" in line]

    names = [f"node{i + 1}" for i in range(LAB_NODES)]

    def per_node(metric: str) -> dict[str, float]:
        return {dict(k[1])["node"]: v for k, v in samples.items() if k[0] == metric}

    assert samples[("wgfleet_store_up", ())] == 1
    assert per_node("wgfleet_node_up") == dict.fromkeys(names, 1)
    synced = per_node("wgfleet_node_last_sync_timestamp_seconds")
    assert set(synced) == set(names) and all(t >= started for t in synced.values())
    on_nodes = per_node("wgfleet_node_peers")
    assert on_nodes["node1"] >= 1 and on_nodes["node2"] >= 1
    assert per_node("wgfleet_node_push_pending") == dict.fromkeys(names, 0)
    assert per_node("wgfleet_node_removals_pending") == dict.fromkeys(names, 0)
    assert all(age >= 0 for age in per_node("wgfleet_node_key_age_seconds").values())
    assert set(per_node("wgfleet_node_key_age_seconds")) == set(names)
    assert samples[("wgfleet_sync_duration_seconds_count", ())] >= 1
    assert samples[("wgfleet_push_duration_seconds_count", ())] >= 1  # node3's pending push
    failures = {
        dict(k[1])["kind"]: v for k, v in samples.items() if k[0] == "wgfleet_failures_total"
    }
    assert set(failures.values()) == {0}
    states = {dict(k[1])["state"] for k in samples if k[0] == "wgfleet_configurations"}
    assert states == {"enabled", "disabled", "over_quota", "expired"}

    secrets = users_data(fleet, lab, [made.client_configs["node1"], other.client_configs["node3"]])
    assert {"metrics-user", "metrics-phone", "metrics-laptop"} <= secrets
    assert len([s for s in secrets if s.count(".") == 3]) >= 3  # tunnel addresses among them
    assert [s for s in sorted(secrets) if s in body] == []
    peers_service.delete_account(fleet, "metrics-user")  # the session lab goes on without it
