"""The privacy profile in force: erase what outlived its retention, and describe what is kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import yaml

from orchestrator.core.privacy import NodeFacts, Retention, build_report, topups_past_retention
from orchestrator.core.quota import NEVER_RESETS
from orchestrator.errors import UsageError
from orchestrator.service.context import Fleet, writes
from orchestrator.settings import Settings


def retention(settings: Settings) -> Retention:
    privacy = settings.privacy
    return Retention(
        closed_periods_days=settings.usage.retention_days,
        node_daily_totals=privacy.node_daily_totals,
        node_daily_days=privacy.node_daily_retention_days,
        topup_days=privacy.topup_retention_days,
        deleted_ledger_days=privacy.deleted_ledger_retention_days,
        allow_contact=privacy.allow_contact,
    )


@dataclass(frozen=True)
class Erased:
    """How many records of each kind the profile let go this time."""

    usage_periods: int = 0
    topups: int = 0
    contacts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "usage_periods": self.usage_periods,
            "topups": self.topups,
            "contacts": self.contacts,
        }


@writes
def apply_retention(fleet: Fleet, today: date) -> Erased:
    """Erase every record the profile no longer permits (each sync runs it): closed billing
    periods past retention, top-ups past theirs, contact numbers when the profile keeps none.
    Node daily totals are kept or erased with the sync's own write (sync.keep_node_daily_totals).
    """
    store = fleet.store
    profile = retention(fleet.settings)
    with store.transaction():
        periods = store.erase_usage_before(
            today - timedelta(days=profile.closed_periods_days), NEVER_RESETS
        )
        # Only top-ups older than the shorter retention can go: the others are not read (a
        # store of a million configurations is not read whole on every sync).
        kept_days = [d for d in (profile.topup_days, profile.deleted_ledger_days) if d]
        old = (
            store.topups(purchased_before=today - timedelta(days=min(kept_days)))
            if kept_days
            else []
        )
        invoices = topups_past_retention(
            old,
            store.configuration_plans({t.configuration for t in old if t.configuration}),
            {p.name: p for p in store.plans()},
            today,
            profile,
        )
        topups = store.erase_topups(invoices)
        contacts = 0 if profile.allow_contact else store.erase_contacts()
    return Erased(periods, topups, contacts)


def check_contact(settings: Settings, contact: str | None, where: str) -> None:
    """Refuse a contact number the profile does not allow."""
    if contact and not settings.privacy.allow_contact:
        raise UsageError(
            f"{where}: the privacy profile keeps no contact numbers (privacy.allow_contact is "
            "false)"
        )


def journal_facts(settings: Settings) -> str:
    """The journald settings the nolog role deploys, in words."""
    defaults = settings.project_root / "roles" / "nolog" / "defaults" / "main.yml"
    try:
        loaded = yaml.safe_load(defaults.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return f"unknown ({defaults} unreadable)"
    journald = loaded.get("nolog_journald_settings", {})
    storage = journald.get("Storage", "?")
    return (
        f"{'in memory only' if storage == 'volatile' else storage} "
        f"(Storage={storage}), at most {journald.get('RuntimeMaxUse', '?')}, entries older than "
        f"{journald.get('MaxRetentionSec', '?')} dropped, forwarded nowhere"
    )


# The resolver role's settings that make its no-log promise, as its template writes them.
RESOLVER_PROMISES = (
    "verbosity: 0",
    'logfile: ""',
    "use-syslog: no",
    "log-queries: no",
    "log-replies: no",
    "statistics-interval: 0",
    "extended-statistics: no",
    "control-enable: no",
    "interface-automatic: no",
)


def resolver_facts(settings: Settings) -> str:
    """The node resolver the resolver role deploys, in words, checked against its template."""
    template = settings.project_root / "roles" / "resolver" / "templates" / "unbound.conf.j2"
    try:
        text = template.read_text(encoding="utf-8")
    except OSError:
        return f"unknown ({template} unreadable)"
    missing = [p for p in RESOLVER_PROMISES if p not in text]
    if missing:
        return f"unknown ({template} lacks {', '.join(missing)})"
    upstream = (
        "forwards to "
        + ", ".join(settings.dns.forwarders)
        + (" over TLS" if settings.dns.forward_tls else " (plain DNS)")
        if settings.dns.forwarders
        else "recursive from the root servers"
    )
    return (
        "unbound on the tunnel addresses only (tunnel clients only); no query, reply or "
        "servfail log, no logfile, no syslog, verbosity 0, no statistics, no remote control; "
        f"cache in memory only; DNSSEC validated, QNAME minimised; {upstream}"
    )


def privacy_report(fleet: Fleet) -> dict[str, Any]:
    """What the store and the nodes keep, from the live schema, settings and audits."""
    return build_report(
        fleet.store.columns(),
        retention(fleet.settings),
        NodeFacts(
            journal_facts(fleet.settings),
            fleet.store.node_audits(),
            resolver_facts(fleet.settings),
        ),
        fleet.store.db.dialect,
        fleet.settings.network.dns_servers,
    )
