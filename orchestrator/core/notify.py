"""Operator notifications: what an event may say. Built from an allow-list so an event can
never carry an endpoint, an address or a time of user activity (a test holds that line)."""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass
from typing import Any

from orchestrator.core.errors import CoreError

CONFIGURATION_EVENTS = ("warning", "over_quota", "expired", "re_enabled")
NODE_EVENTS = ("node_unreachable", "audit_failed")
EVENTS = CONFIGURATION_EVENTS + NODE_EVENTS

# Every key an event may carry; anything else is a bug, refused before it leaves.
ALLOWED_KEYS = frozenset(
    {"event", "id", "configuration", "account", "contact", "plan", "percent", "node"}
)


# Plain http is allowed only to this machine: an event names accounts and configurations, and a
# webhook URL usually carries its token, so neither may cross a network unencrypted.
LOOPBACK_NAMES = frozenset({"localhost"})


def webhook_problem(url: str) -> str | None:
    """Why ``url`` cannot be the operator's webhook, or None: an https URL with a host, or
    http to a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname
    except ValueError:
        return "not a URL"
    if not host:
        return "an https:// URL with a host"
    if parsed.scheme == "https":
        return None
    if parsed.scheme != "http":
        return "an https:// URL (http:// only to a loopback address)"
    if host.lower() in LOOPBACK_NAMES:
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return "must be https:// (plain http:// only to 127.0.0.1, [::1] or localhost)"


@dataclass(frozen=True)
class ConfigurationFacts:
    """What the store says about an event's configuration when the event is delivered."""

    name: str
    account: str
    contact: str | None
    plan: str | None
    percent: int | None  # share of the allowance used, None when unmetered


def payload(
    event_id: int,
    kind: str,
    subject: str,
    facts: ConfigurationFacts | None,
    allow_contact: bool,
) -> dict[str, Any]:
    """The JSON an event carries; ``facts`` is None for node events (``subject`` is a node)."""
    if kind not in EVENTS:
        raise CoreError(f"unknown event {kind!r}")
    data: dict[str, Any] = {"event": kind, "id": event_id}
    if kind in NODE_EVENTS:
        data["node"] = subject
    else:
        if facts is None:
            raise CoreError(f"{kind} needs its configuration")
        data.update(configuration=facts.name, account=facts.account, plan=facts.plan)
        if facts.percent is not None:
            data["percent"] = facts.percent
        if allow_contact and facts.contact:
            data["contact"] = facts.contact
    unexpected = set(data) - ALLOWED_KEYS
    if unexpected:
        raise CoreError(f"event keys outside the allow-list: {sorted(unexpected)}")
    return data
