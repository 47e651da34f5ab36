"""The Prometheus metrics on a real, seeded SQLite store: each value, the labels, the HTTP
endpoint (no access log, no client address) and the `sync --every --metrics` options.

The exposition is parsed with prometheus_client's own parser, as a Prometheus server would.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.request
from collections.abc import MutableMapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.cli import main
from orchestrator.core.errors import InvalidInput
from orchestrator.core.metrics import (
    CONFIGURATION_STATES,
    FAILURE_KINDS,
    configuration_state,
    is_up,
    parse_metrics_listen,
)
from orchestrator.core.models import DisabledReason
from orchestrator.errors import EnvironmentProblem, UsageError
from orchestrator.service import peers
from orchestrator.service.context import open_fleet
from orchestrator.service.metrics import FleetMetrics, metrics_app, render, serving
from orchestrator.settings import Settings, settings_from_mapping
from tests.seeded_store import TODAY, add_configuration, add_nodes

SYNCED_AT = 1_715_760_000  # 2024-05-15 08:00 UTC


def make_settings(base: Path, *, daily: bool = False) -> Settings:
    return settings_from_mapping(
        {
            "data_dir": str(base / "data"),
            "inventory": str(base / "inventory"),
            "ssh": {"connect_timeout": 1, "known_hosts": "/nonexistent/wgfleet/known_hosts"},
            "privacy": {"node_daily_totals": daily},
        },
        "test settings",
        base,
    )


# What no label or value of the exposition may contain (the seed's user-side data).
SECRETS: list[str] = []


def seed(settings: Settings) -> None:
    """Three nodes (node1 synced and pushed, node2 failing its sync, node3 never reached), four
    configurations, one in each state, and one removal pending on node1."""
    with open_fleet(settings, write=True) as fleet:
        store = fleet.store
        with store.transaction():
            add_nodes(store, [date(2024, 5, 5), date(2024, 5, 4), None])
        peers.add_account(fleet, "alice-user", "password-a", "device-a", "+10000000001")
        peers.add_account(fleet, "bob-user", "password-b", "device-b")

        def config(name: str, account: str, n: int, nodes: list[str]) -> None:
            added = add_configuration(store, name, account, n, nodes)
            SECRETS.extend([name, added.public_key, *(str(a) for a in added.addresses.values())])

        with store.transaction():
            config("alice-phone", "alice-user", 1, ["node1", "node2"])
            config("alice-laptop", "alice-user", 2, ["node1"])
            config("bob-tablet", "bob-user", 3, ["node1", "node3"])
            config("bob-desk", "bob-user", 4, ["node2"])
        store.set_enabled(["alice-laptop"], False, DisabledReason.OVER_QUOTA)
        store.set_enabled(["bob-tablet"], False, DisabledReason.EXPIRED)
        store.set_enabled(["bob-desk"], False, DisabledReason.OPERATOR)
        for node in ("node1", "node2"):
            revision = store.node_revisions()[node][0]
            store.mark_pushed(node, revision, True)
        store.set_enabled(["bob-desk"], True, None)  # node2 now waits for a push
        from orchestrator.adapters.store import RowUsage

        store.apply_accounting(RowUsage([], [], [], []), {}, ["node1"], synced_at=SYNCED_AT)
        store.mark_sync_failed(["node2"])
        store.mark_audited({"node1": True, "node2": False})
        store.add_node_daily(date(2024, 5, 14), {"node1": 7_000, "node2": 300})
        store.add_node_daily(TODAY, {"node1": 55})
    SECRETS.extend(["alice-user", "bob-user", "device-a", "device-b", "+10000000001"])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path)
    seed(settings)
    return settings


def scrape(metrics: FleetMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, labels) -> value."""
    body, content_type = render(metrics)
    assert content_type.startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def per_node(samples: dict[Any, float], name: str) -> dict[str, float]:
    return {dict(labels)["node"]: value for (n, labels), value in samples.items() if n == name}


def test_the_store_gauges_per_node(settings: Settings) -> None:
    samples = scrape(FleetMetrics(settings, today=lambda: TODAY))
    assert samples[("wgfleet_store_up", ())] == 1
    assert samples[("wgfleet_nodes", ())] == 3
    # node1: synced and pushed; node2: pushed, its last sync failed; node3: never reached.
    assert per_node(samples, "wgfleet_node_up") == {"node1": 1, "node2": 0, "node3": 0}
    assert per_node(samples, "wgfleet_node_last_sync_timestamp_seconds") == {"node1": SYNCED_AT}
    # Enabled placements: alice-phone on node1 and node2, bob-desk (on again) on node2.
    assert per_node(samples, "wgfleet_node_peers") == {"node1": 1, "node2": 2, "node3": 0}
    assert per_node(samples, "wgfleet_node_push_pending") == {"node1": 0, "node2": 1, "node3": 1}
    # Cut off and expired keys wait for their removal on node1 (and node3, never pushed).
    assert per_node(samples, "wgfleet_node_removals_pending") == {
        "node1": 2,
        "node2": 0,
        "node3": 1,
    }
    day = 86_400
    assert per_node(samples, "wgfleet_node_key_age_seconds") == {
        "node1": 10 * day,
        "node2": 11 * day,
    }
    assert per_node(samples, "wgfleet_node_audit_passed") == {"node1": 1, "node2": 0}
    # The profile keeps no daily node totals: no per-node volume at all.
    assert per_node(samples, "wgfleet_node_counted_bytes_last_day") == {}


def test_configurations_by_state_and_failures_start_at_zero(settings: Settings) -> None:
    samples = scrape(FleetMetrics(settings, today=lambda: TODAY))
    states = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "wgfleet_configurations"
    }
    assert states == {"enabled": 2, "disabled": 0, "over_quota": 1, "expired": 1}
    failures = {
        dict(labels)["kind"]: value
        for (name, labels), value in samples.items()
        if name == "wgfleet_failures_total"
    }
    assert failures == dict.fromkeys(FAILURE_KINDS, 0)


def test_daily_volume_only_for_complete_days_and_only_when_the_profile_keeps_it(
    tmp_path: Path, settings: Settings
) -> None:
    keeping = make_settings(tmp_path, daily=True)
    samples = scrape(FleetMetrics(keeping, today=lambda: TODAY))
    # Yesterday's totals; today's running total (55 on node1) is not exposed.
    assert per_node(samples, "wgfleet_node_counted_bytes_last_day") == {
        "node1": 7_000,
        "node2": 300,
        "node3": 0,
    }


def test_runs_observed_as_histograms_and_failures_by_kind(settings: Settings) -> None:
    metrics = FleetMetrics(settings, today=lambda: TODAY)
    metrics.sync_ran(3.0)
    metrics.sync_ran(40.0)
    metrics.push_ran(0.2)
    metrics.failed("node_unreachable", 2)
    metrics.failed("push_failed")
    samples = scrape(metrics)
    assert samples[("wgfleet_sync_duration_seconds_count", ())] == 2
    assert samples[("wgfleet_sync_duration_seconds_sum", ())] == 43.0
    assert samples[("wgfleet_sync_duration_seconds_bucket", (("le", "5.0"),))] == 1
    assert samples[("wgfleet_sync_duration_seconds_bucket", (("le", "60.0"),))] == 2
    assert samples[("wgfleet_push_duration_seconds_bucket", (("le", "0.25"),))] == 1
    assert samples[("wgfleet_failures_total", (("kind", "node_unreachable"),))] == 2
    assert samples[("wgfleet_failures_total", (("kind", "push_failed"),))] == 1
    with pytest.raises(ValueError, match="not a failure kind"):
        metrics.failed("alice-phone")


def test_no_label_or_value_names_a_user(tmp_path: Path, settings: Settings) -> None:
    metrics = FleetMetrics(make_settings(tmp_path, daily=True), today=lambda: TODAY)
    metrics.failed("counters_refused")
    body = render(metrics)[0].decode()
    assert SECRETS
    assert [s for s in SECRETS if s in body] == []
    labels = {
        (label, value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        for label, value in sample.labels.items()
    }
    allowed = {"node": {"node1", "node2", "node3"}, "state": set(CONFIGURATION_STATES)}
    allowed["kind"] = set(FAILURE_KINDS)
    for label, value in labels:
        assert value in allowed.get(label, set()) or label == "le", (label, value)


def test_a_store_that_cannot_be_read_is_a_gauge_not_a_failed_scrape(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # never opened: no schema yet, and a scrape upgrades none
    samples = scrape(FleetMetrics(settings))
    samples = {k: v for k, v in samples.items() if not k[0].endswith("_created")}
    assert (
        samples
        == {("wgfleet_store_up", ()): 0}
        | {("wgfleet_failures_total", (("kind", kind),)): 0 for kind in FAILURE_KINDS}
        | _empty_histograms()
    )


def _empty_histograms() -> dict[Any, float]:
    from orchestrator.service.metrics import PUSH_BUCKETS, SYNC_BUCKETS

    samples: dict[Any, float] = {}
    for name, buckets in (("sync", SYNC_BUCKETS), ("push", PUSH_BUCKETS)):
        metric = f"wgfleet_{name}_duration_seconds"
        for bound in (*buckets, "+Inf"):
            samples[(f"{metric}_bucket", (("le", str(bound)),))] = 0
        samples[(f"{metric}_count", ())] = 0
        samples[(f"{metric}_sum", ())] = 0
    return samples


def test_served_over_http_without_access_log_or_client_address(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    metrics = FleetMetrics(settings, today=lambda: TODAY)
    with serving(metrics, "127.0.0.1:0") as (host, port):
        assert host == "127.0.0.1" and port > 0
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as answer:
            body = answer.read().decode()
            assert answer.headers["Content-Type"].startswith("text/plain")
        # A client that hangs up mid-request leaves no trace either.
        with socket.create_connection((host, port), timeout=10) as hung:
            hung.sendall(b"GET /metrics HTTP/1.1\r\n")
    assert 'wgfleet_node_peers{node="node2"} 2.0' in body
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    # Stopped: the port is free again.
    with socket.create_server((host, port)):
        pass


def test_serving_refuses_a_bad_address_and_a_taken_port(settings: Settings) -> None:
    metrics = FleetMetrics(settings)
    with (
        pytest.raises(UsageError, match="is not an IP address"),
        serving(metrics, "metrics.example:9100"),
    ):
        pass
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with (
            pytest.raises(EnvironmentProblem, match=f"127.0.0.1:{port}: cannot listen"),
            serving(metrics, f"127.0.0.1:{port}"),
        ):
            pass


def test_the_asgi_app_for_a_server_to_mount(settings: Settings) -> None:
    app = metrics_app(FleetMetrics(settings, today=lambda: TODAY))
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": "GET", "path": "/metrics"}, receive, send))
    assert sent[0]["status"] == 200
    assert b'wgfleet_node_up{node="node1"} 1.0' in sent[1]["body"]
    sent.clear()
    asyncio.run(app({"type": "http", "method": "POST", "path": "/metrics"}, receive, send))
    assert sent[0]["status"] == 405


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::1]:0", ("::1", 0)),
        ("198.18.112.1:65535", ("198.18.112.1", 65535)),
    ],
)
def test_listen_addresses(text: str, parsed: tuple[str, int]) -> None:
    assert parse_metrics_listen(text) == parsed


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9100", "give ADDR:PORT"),
        (":9100", "give ADDR:PORT"),
        ("localhost:9100", "is not an IP address"),
        ("::1:9100", "in brackets"),
        ("127.0.0.1:65536", "must be 0 to 65535"),
        ("127.0.0.1:-1", "must be 0 to 65535"),
        ("127.0.0.1:٩١", "must be 0 to 65535"),
        ("127.0.0.1\x1b[31m:1", "\\x1b"),
    ],
)
def test_bad_listen_addresses(text: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem.replace("[", r"\[").replace("\\x", "\\\\x")):
        parse_metrics_listen(text)


def test_states_and_reachability() -> None:
    assert configuration_state(True, None) == "enabled"
    assert configuration_state(False, DisabledReason.OPERATOR) == "disabled"
    assert configuration_state(False, DisabledReason.OVER_QUOTA) == "over_quota"
    assert configuration_state(False, DisabledReason.EXPIRED) == "expired"
    assert (is_up(None, None), is_up(True, None), is_up(True, False)) == (False, True, False)


def test_cli_metrics_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.yml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ninventory: {tmp_path / 'inventory'}\n")
    assert main(["--config", str(config), "sync", "--metrics", "127.0.0.1:9100"]) == 2
    assert capsys.readouterr().err == (
        "wgfleet: error: --metrics serves a running loop: give --every too\n"
    )
    argv = ["--config", str(config), "sync", "--every", "60s", "--metrics", "node1:9100"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "wgfleet: error: --metrics 'node1:9100': 'node1' is not an IP address: give an IPv4 "
        "literal or an IPv6 one in brackets, e.g. [::1]:8787\n"
    )


def test_the_privacy_report_says_what_the_metrics_expose(settings: Settings) -> None:
    from orchestrator.service.privacy import privacy_report

    with open_fleet(settings) as fleet:
        report = privacy_report(fleet)
    assert report["undeclared"] == []  # nodes.last_sync_at is declared
    facts = " ".join(report["metrics"])
    assert "no label or value holds a username, a configuration name, a key or an address" in facts
    assert "no access log" in facts and "no client address" in facts
    assert "no traffic volume at all" in facts
    with open_fleet(make_settings(settings.data_dir.parent, daily=True)) as fleet:
        keeping = " ".join(privacy_report(fleet)["metrics"])
    assert "over the last complete day, all its users together" in keeping


class Recorded:
    """A RunObserver that keeps what it heard."""

    def __init__(self) -> None:
        self.syncs: list[float] = []
        self.pushes: list[float] = []
        self.failures: dict[str, int] = {}

    def sync_ran(self, seconds: float) -> None:
        self.syncs.append(seconds)

    def push_ran(self, seconds: float) -> None:
        self.pushes.append(seconds)

    def failed(self, kind: str, count: int = 1) -> None:
        assert kind in FAILURE_KINDS
        self.failures[kind] = self.failures.get(kind, 0) + count


def test_sync_and_push_report_to_the_sessions_observer(settings: Settings) -> None:
    from orchestrator.service.push import push
    from orchestrator.service.sync import sync

    heard = Recorded()
    # The seed's nodes are pinned nowhere: every connection is refused before any packet.
    with open_fleet(settings, write=True, observer=heard) as fleet:
        result = sync(fleet, today=TODAY)
        assert [n.ok for n in result.nodes] == [False, False, False]
        assert len(heard.syncs) == 1
        # Its push (of what enforcement decided) reached nobody either, and says so itself.
        pushed_in_sync = len(result.push.failed) if result.push else 0
        assert len(heard.pushes) == (1 if result.push else 0)
        expected = {"node_unreachable": 3} | (
            {"push_failed": pushed_in_sync} if pushed_in_sync else {}
        )
        assert heard.failures == expected
        pushes = len(heard.pushes)
        pushed = push(fleet, ["node2", "node3"])
        assert not pushed.ok
        assert len(heard.pushes) == pushes + 1
        assert heard.failures == {"node_unreachable": 3, "push_failed": pushed_in_sync + 2}
        push(fleet, ["node2"], dry_run=True)  # a plan changes nothing: not a push
        assert len(heard.pushes) == pushes + 1


def test_a_loop_run_that_did_not_happen_is_a_failure_of_its_kind(tmp_path: Path) -> None:
    from orchestrator.service.lock import fleet_lock
    from orchestrator.service.sync_loop import LoopRun, sync_every

    settings = make_settings(tmp_path)
    seed(settings)
    heard = Recorded()
    runs: list[LoopRun] = []
    with fleet_lock(settings, wait=True, timeout=5):  # another run holds the fleet
        done = threading.Thread(
            target=sync_every,
            args=(settings, 1, runs.append),
            kwargs={"runs": 1, "observer": heard},
        )
        done.start()
        done.join()
    assert [r.result for r in runs] == [None]
    assert heard.failures == {"fleet_busy": 1} and heard.syncs == []
