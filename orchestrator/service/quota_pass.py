"""A sync's quota pass: every configuration judged on its quota and validity, a page of the
store at a time, so its memory is one page's whatever the number of configurations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

from orchestrator.core.quota import Enforcement, enforce
from orchestrator.service import notify
from orchestrator.service.context import Fleet
from orchestrator.service.retry import retry_conflicts
from orchestrator.service.usage import page_statuses


@dataclass(frozen=True)
class QuotaPass:
    """What the pass decided over the whole store, and each warned configuration's period."""

    decision: Enforcement
    warn_periods: dict[str, date]


def judge_every_configuration(fleet: Fleet, today: date, warn_ratio: float) -> QuotaPass:
    """Decisions read outside any transaction (the caller holds and judges again those it
    acts on). A warning is forgotten page by page as its configuration drops back under the
    threshold (a top-up), so the next crossing warns again."""
    store = fleet.store
    plans = {p.name: p for p in store.plans()}
    disable: list[str] = []
    enable: list[str] = []
    warn: list[str] = []
    expire: list[str] = []
    periods: dict[str, date] = {}
    for page in store.quota_pages():
        statuses = page_statuses(page, plans, today)
        decided = enforce(page.configurations, statuses, warn_ratio, today)
        disable += decided.disable
        enable += decided.enable
        warn += decided.warn
        expire += decided.expire
        periods.update((name, statuses[name].period_start) for name in decided.warn)
        below = {
            name
            for name in page.warned
            if name in statuses
            and (statuses[name].allowance is None or statuses[name].ratio() < warn_ratio)
        }
        if below:
            retry_conflicts(partial(store.forget_warnings, below))
    decision = Enforcement(
        tuple(sorted(disable)), tuple(sorted(enable)), tuple(sorted(warn)), tuple(sorted(expire))
    )
    return QuotaPass(decision, periods)


def warn_once(fleet: Fleet, periods: dict[str, date]) -> None:
    """A warning event once per billing period and crossing: the period is noted with the
    event, both in one transaction."""
    store = fleet.store
    with store.transaction():
        notify.queue(fleet, "warning", store.mark_warned(periods))
