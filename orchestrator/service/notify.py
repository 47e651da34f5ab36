"""Queue events with what causes them, deliver them after: each occurrence once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from orchestrator.adapters import hooks
from orchestrator.core.notify import CONFIGURATION_EVENTS, ConfigurationFacts, payload
from orchestrator.errors import NotFound
from orchestrator.service.context import Fleet


def queue(fleet: Fleet, kind: str, subjects: list[str] | tuple[str, ...]) -> None:
    """Queue one event per subject, in the caller's transaction; nothing without a hook."""
    if subjects and fleet.settings.notify.enabled:
        fleet.store.queue_notifications((kind, s) for s in subjects)


@dataclass(frozen=True)
class Delivery:
    delivered: int
    problems: tuple[str, ...] = ()  # one line per event that stays queued for the next run


def _facts(fleet: Fleet, name: str, today: date) -> ConfigurationFacts:
    from orchestrator.service.usage import quota_statuses

    config = fleet.store.configuration(name)
    account = fleet.store.account(config.account)
    status = quota_statuses(fleet, today, [config])[name]
    percent = None
    if status.allowance is not None:
        percent = 100 if not status.allowance else int(100 * status.used / status.allowance)
    return ConfigurationFacts(name, config.account, account.contact, config.plan, percent)


def deliver_pending(fleet: Fleet, today: date | None = None) -> Delivery:
    """Send every queued event to the hook, oldest first; a delivered event is deleted, so a
    re-run sends nothing twice; one the hook refused stays queued and is sent next time (its
    ``id`` is the same, for a receiver that must not act twice)."""
    notify = fleet.settings.notify
    if not notify.enabled:
        return Delivery(0)
    today = today or date.today()
    delivered, problems = 0, []
    for event_id, kind, subject in fleet.store.pending_notifications():
        facts = None
        if kind in CONFIGURATION_EVENTS:
            try:
                facts = _facts(fleet, subject, today)
            except NotFound:
                fleet.store.drop_notification(event_id)  # deleted meanwhile: nobody to tell
                continue
        event = payload(event_id, kind, subject, facts, fleet.settings.privacy.allow_contact)
        outcomes = []
        if notify.command:
            outcomes.append(hooks.run_command(notify.command, event, notify.timeout))
        if notify.webhook:
            outcomes.append(hooks.post_webhook(notify.webhook, event, notify.timeout))
        failures = [f for f in outcomes if f]
        if failures:
            problems.append(f"event {event_id} ({kind} {subject}): {'; '.join(failures)}")
            break  # keep the order: later events wait for this one
        fleet.store.drop_notification(event_id)
        delivered += 1
    return Delivery(delivered, tuple(problems))
