"""Notifications: each occurrence once, queued with its cause, never an endpoint or a time."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import date
from pathlib import Path

import pytest

from orchestrator.core.models import Account
from orchestrator.core.notify import (
    ALLOWED_KEYS,
    CONFIGURATION_EVENTS,
    EVENTS,
    ConfigurationFacts,
    payload,
)
from orchestrator.core.quota import NEVER_RESETS
from orchestrator.service import peers
from orchestrator.service.context import open_fleet
from orchestrator.service.sync import sync
from orchestrator.settings import NotifySettings, Settings

TODAY = date(2026, 11, 23)
FACTS = ConfigurationFacts("ann-1", "ann", "+15550123", "basic", 85)


@pytest.mark.parametrize("kind", EVENTS)
@pytest.mark.parametrize("allow_contact", [True, False])
def test_an_event_carries_only_allowed_keys(kind: str, allow_contact: bool) -> None:
    facts = FACTS if kind in CONFIGURATION_EVENTS else None
    event = payload(7, kind, "ann-1" if facts else "node1", facts, allow_contact)
    assert set(event) <= ALLOWED_KEYS and event["event"] == kind and event["id"] == 7
    assert ("contact" in event) == (allow_contact and facts is not None)
    for key in event:
        assert not any(word in key for word in ("time", "endpoint", "handshake", "ip", "seen"))


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        payload(1, "connected", "ann-1", FACTS, True)


def hooked(settings: Settings, log: Path, fail_marker: Path) -> Settings:
    script = (
        "import sys, pathlib; data = sys.stdin.read(); "
        f"sys.exit(3) if pathlib.Path({str(fail_marker)!r}).exists() else None; "
        f"open({str(log)!r}, 'a').write(data)"
    )
    return dataclasses.replace(
        settings, notify=NotifySettings(command=(sys.executable, "-c", script))
    )


def events(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_each_occurrence_is_delivered_once_and_a_refused_one_waits(
    settings: Settings, tmp_path: Path
) -> None:
    log, fail = tmp_path / "events.jsonl", tmp_path / "fail"
    settings = hooked(settings, log, fail)
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("ann", "scrypt$a", "dev-a", contact="+15550123"))
        name = peers.add_configuration(
            fleet, "ann", nodes=["node1"], quota_bytes=100
        ).configuration.name
        fleet.store.add_usage(name, NEVER_RESETS, 85, 0)

        sync(fleet, today=TODAY)  # nodes unreachable (unit fixture): down, and ann warned
        first = events(log)
        assert sorted((e["event"], e.get("node") or e.get("configuration")) for e in first) == [
            ("node_unreachable", "node1"),
            ("node_unreachable", "node2"),
            ("warning", name),
        ]
        warning = next(e for e in first if e["event"] == "warning")
        assert warning == {
            "event": "warning",
            "id": warning["id"],
            "configuration": name,
            "account": "ann",
            "plan": None,
            "percent": 85,
            "contact": "+15550123",
        }
        sync(fleet, today=TODAY)
        assert events(log) == first  # a re-run repeats nothing

        fleet.store.add_usage(name, NEVER_RESETS, 20, 0)
        fail.touch()  # the hook refuses: the event stays queued
        refused = sync(fleet, today=TODAY)
        assert any("not delivered, kept for the next run" in n for n in refused.notes)
        assert events(log) == first
        fail.unlink()
        sync(fleet, today=TODAY)
        over = events(log)[len(first) :]
        assert [(e["event"], e["configuration"]) for e in over] == [("over_quota", name)]

        peers.topup(fleet, name, invoice="INV-1", amount="1", bytes_granted=1000, today=TODAY)
        sync(fleet, today=TODAY)
        back = events(log)[len(first) + 1 :]
        assert [(e["event"], e["configuration"]) for e in back] == [("re_enabled", name)]
        assert fleet.store.pending_notifications() == []


def test_without_a_hook_nothing_is_queued(settings: Settings) -> None:
    with open_fleet(settings, write=True) as fleet:
        sync(fleet, today=TODAY)
        assert fleet.store.pending_notifications() == []


def test_a_webhook_gets_each_event_as_a_json_post_and_a_refusal_keeps_it(
    settings: Settings,
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict] = []
    answer = {"status": 500}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if answer["status"] == 204:
                received.append(json.loads(body))
            self.send_response(answer["status"])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook/s3cret"
        hooked = dataclasses.replace(settings, notify=NotifySettings(webhook=url, timeout=5))
        with open_fleet(hooked, write=True) as fleet:
            from orchestrator.service import notify

            with fleet.store.transaction():
                notify.queue(fleet, "node_unreachable", ["node1"])
            refused = notify.deliver_pending(fleet, TODAY)
            assert refused.delivered == 0 and "answered 500" in refused.problems[0]
            assert "s3cret" not in refused.problems[0]
            answer["status"] = 204
            assert notify.deliver_pending(fleet, TODAY).delivered == 1
            assert notify.deliver_pending(fleet, TODAY).delivered == 0
        assert [(e["event"], e["node"]) for e in received] == [("node_unreachable", "node1")]
    finally:
        server.shutdown()
