"""Prometheus metrics of a fleet: per node and fleet-wide, never per user (docs/METRICS.md).

Two sources in one registry:

- **the store**, read at each scrape by :class:`StoreCollector` in a read session of its own
  (`open_fleet(settings)`: no fleet lock, so a scrape never waits behind a sync and a sync
  never waits behind a scrape): each node's up, last successful sync, peers, pending push and
  removals, key age, audit verdict, and daily volume where the privacy profile keeps one; the
  configurations by state;
- **this process's runs**, observed by :class:`FleetMetrics` (the `RunObserver` a session
  carries): sync and push durations as histograms, failures by kind.

Every label is a node's name or a word from a fixed set (`core.metrics`): no label ever holds a
username, a configuration name, a key or an address. The HTTP endpoint keeps no access log and
no client address (see :func:`serving`).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import date, timedelta
from socketserver import TCPServer, ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.core.metrics import (
    FAILURE_KINDS,
    configurations_by_state,
    node_metrics,
    parse_metrics_listen,
)
from orchestrator.errors import EnvironmentProblem, WgfleetError
from orchestrator.service.context import open_fleet
from orchestrator.service.errors import translated
from orchestrator.settings import Settings

SYNC_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
PUSH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class StoreCollector(Collector):
    """The store's gauges, read afresh at every scrape in one read session."""

    def __init__(self, settings: Settings, today: Callable[[], date] = date.today) -> None:
        self.settings = settings
        self.today = today

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "wgfleet_store_up",
            "1 if this scrape could read the store; 0: no store gauge in this scrape",
        )
        try:
            families = self._read()
        except WgfleetError:
            # A store that is down or not upgraded: say so, and nothing else (the message may
            # name the store's server; it is not a label).
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        today = self.today()
        with open_fleet(self.settings, upgrade=False) as fleet:
            store = fleet.store
            keeps_daily = fleet.settings.privacy.node_daily_totals
            nodes = node_metrics(
                store.nodes(),
                store.enabled_peer_counts(),
                store.node_revisions(),
                store.removal_counts(),
                store.node_health(),
                store.node_sync_times(),
                store.node_audits(),
                store.node_daily(today - timedelta(days=1)) if keeps_daily else None,
                today,
            )
            states = configurations_by_state(store.configuration_state_counts())

        def per_node(name: str, help_text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, help_text, labels=["node"])

        up = per_node("wgfleet_node_up", "1 if the node's last sync and push both reached it")
        synced = per_node(
            "wgfleet_node_last_sync_timestamp_seconds",
            "when the node last answered a sync, unix seconds (absent: never)",
        )
        peers = per_node("wgfleet_node_peers", "enabled configurations placed on the node")
        pending = per_node(
            "wgfleet_node_push_pending", "1 if the node's peer set changed since its last push"
        )
        removals = per_node(
            "wgfleet_node_removals_pending", "key removals the node has not confirmed yet"
        )
        key_age = per_node(
            "wgfleet_node_key_age_seconds",
            "age of the node's WireGuard key in seconds, counted in whole days",
        )
        audit = per_node(
            "wgfleet_node_audit_passed", "1 if the node passed its last audit (absent: never)"
        )
        volume = per_node(
            "wgfleet_node_counted_bytes_last_day",
            "bytes counted on the node over the last complete day, all users together "
            "(only when the privacy profile keeps daily node totals)",
        )
        for n in nodes:
            label = [n.name]
            up.add_metric(label, int(n.up))
            peers.add_metric(label, n.peers)
            pending.add_metric(label, int(n.push_pending))
            removals.add_metric(label, n.removals_pending)
            if n.last_sync is not None:
                synced.add_metric(label, n.last_sync)
            if n.key_age_seconds is not None:
                key_age.add_metric(label, n.key_age_seconds)
            if n.audit_passed is not None:
                audit.add_metric(label, int(n.audit_passed))
            if n.bytes_last_day is not None:
                volume.add_metric(label, n.bytes_last_day)
        nodes_total = GaugeMetricFamily("wgfleet_nodes", "nodes in the store")
        nodes_total.add_metric([], len(nodes))
        by_state = GaugeMetricFamily(
            "wgfleet_configurations", "configurations by state", labels=["state"]
        )
        for state, count in states.items():
            by_state.add_metric([state], count)
        families: list[Metric] = [
            up,
            synced,
            peers,
            pending,
            removals,
            key_age,
            audit,
            nodes_total,
            by_state,
        ]
        if keeps_daily:
            families.append(volume)
        return families


class FleetMetrics:
    """One registry for a process: the store's gauges and this process's runs. It is the
    `RunObserver` its sessions carry (``open_fleet(..., observer=metrics)``)."""

    def __init__(self, settings: Settings, *, today: Callable[[], date] = date.today) -> None:
        self.registry = CollectorRegistry()
        self.sync_seconds = Histogram(
            "wgfleet_sync_duration_seconds",
            "duration of a whole sync: counters in, accounted, enforced, pushed",
            buckets=SYNC_BUCKETS,
            registry=self.registry,
        )
        self.push_seconds = Histogram(
            "wgfleet_push_duration_seconds",
            "duration of a push to one or more nodes",
            buckets=PUSH_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "wgfleet_failures",
            "failures by kind (see docs/METRICS.md)",
            ["kind"],
            registry=self.registry,
        )
        for kind in FAILURE_KINDS:  # every kind shows from the start, at 0
            self.failures.labels(kind)
        self.registry.register(StoreCollector(settings, today))

    def sync_ran(self, seconds: float) -> None:
        self.sync_seconds.observe(seconds)

    def push_ran(self, seconds: float) -> None:
        self.push_seconds.observe(seconds)

    def failed(self, kind: str, count: int = 1) -> None:
        if kind not in FAILURE_KINDS:
            raise ValueError(f"not a failure kind of the metrics: {kind}")  # a bug, not input
        self.failures.labels(kind).inc(count)


def render(metrics: FleetMetrics) -> tuple[bytes, str]:
    """The exposition (Prometheus text format) and its content type, for any HTTP server."""
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def metrics_app(metrics: FleetMetrics) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app answering every GET with the exposition, for a server to mount (`serve`'s
    `/metrics`). The store is read in a worker thread: a scrape never blocks the event loop.
    It reads nothing of the request but its method: no client address, no header."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            status, body, content_type = 405, b"method not allowed\n", "text/plain"
        else:
            status = 200
            body, content_type = await asyncio.to_thread(render, metrics)
        if scope.get("method") == "HEAD":
            body = b""
        headers = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log and no client address: wsgiref would print one line per request, with
    the client's address, on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "-"


class _QuietServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in flight never holds the process at exit

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the address up (getfqdn): no name lookup here.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print the client's address with the traceback: the kind only.
        kind = type(sys.exc_info()[1]).__name__
        sys.stderr.write(f"wgfleet: a metrics request failed: {kind}\n")


class _QuietServer6(_QuietServer):
    address_family = socket.AF_INET6


@contextmanager
def serving(metrics: FleetMetrics, listen: str) -> Iterator[tuple[str, int]]:
    """Serve ``metrics`` over HTTP on ``listen`` (ADDR:PORT, port 0: any free one) while the
    block runs; yield the address and port bound. Stopped and closed when the block ends."""
    with translated():
        host, port = parse_metrics_listen(listen)
    server_class = _QuietServer6 if ":" in host else _QuietServer
    try:
        server: WSGIServer = make_server(
            host, port, make_wsgi_app(metrics.registry), server_class, _QuietHandler
        )
    except OSError as exc:
        raise EnvironmentProblem(
            f"--metrics {listen}: cannot listen there: {exc.strerror or exc}"
        ) from None
    thread = threading.Thread(target=server.serve_forever, name="wgfleet-metrics", daemon=True)
    thread.start()
    try:
        bound = server.server_address
        yield str(bound[0]), int(bound[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
