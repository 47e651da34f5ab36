"""Quota rules: billing periods, allowances, and who must be cut off or let back in.

A configuration's allowance for its current billing period is its explicit quota (``peers add
--quota``), plus its plan's quota, plus the bytes of its top-ups: all top-ups for quotas that
never reset, the top-ups bought in the current period for monthly plans. A configuration with
no quota, no plan and no top-up is unmetered (operator access, site links). Usage counts the
current period only when the plan resets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from orchestrator.core.models import (
    Configuration,
    DisabledReason,
    Plan,
    ResetRule,
    TopUp,
    UsageTotal,
)

NEVER_RESETS = date(1970, 1, 1)  # the single billing period of a quota that never resets


def shown_period_start(start: date) -> date | None:
    """A period's start as people and JSON see it: None for a quota that never resets (its one
    period has no start; the store's marker date is not a date anything happened on)."""
    return None if start == NEVER_RESETS else start


def period_start(plan: Plan | None, today: date) -> date:
    if plan is None or plan.reset == ResetRule.NEVER:
        return NEVER_RESETS
    if today.day >= plan.anchor_day:
        return today.replace(day=plan.anchor_day)
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return date(year, month, plan.anchor_day)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    configuration: str
    period_start: date
    allowance: int | None  # None: unmetered
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.allowance is None else self.allowance - self.used

    @property
    def over(self) -> bool:
        return self.allowance is not None and self.used >= self.allowance

    def ratio(self) -> float:
        if not self.allowance:
            return 0.0 if self.allowance is None else 1.0
        return self.used / self.allowance


def quota_status(
    config: Configuration,
    plan: Plan | None,
    topups: Iterable[TopUp],
    usage: Iterable[UsageTotal],
    today: date,
) -> QuotaStatus:
    start = period_start(plan, today)
    topups = list(topups)
    if plan is not None and plan.reset == ResetRule.MONTHLY:
        granted = sum(t.bytes_granted for t in topups if t.purchased_on >= start)
        used = sum(u.total for u in usage if u.period_start == start)
    else:
        granted = sum(t.bytes_granted for t in topups)
        used = sum(u.total for u in usage)
    metered = config.quota_bytes is not None or plan is not None or bool(topups)
    allowance = (config.quota_bytes or 0) + (plan.quota_bytes if plan else 0) + granted
    return QuotaStatus(config.name, start, allowance if metered else None, used)


def validity_after(plan: Plan, current: date | None, today: date) -> date | None:
    """The last valid day after activating or renewing ``plan`` today: ``validity_days`` from
    today, or from the day after the current validity when that is still running (a renewal
    before expiry loses nothing); capped by the plan's own ``valid_until``. None: no expiry."""
    until = None
    if plan.validity_days:
        start = today if current is None or current < today else current + timedelta(days=1)
        until = start + timedelta(days=plan.validity_days - 1)
    if plan.valid_until is not None:
        until = plan.valid_until if until is None else min(until, plan.valid_until)
    return until


def expired(config: Configuration, today: date) -> bool:
    return config.valid_until is not None and today > config.valid_until


@dataclass(frozen=True)
class Enforcement:
    disable: tuple[str, ...]  # newly over quota (or renewed but still over it)
    enable: tuple[str, ...]  # were cut off for quota or expiry, now fine again
    warn: tuple[str, ...]  # enabled, at or above the warning threshold, not yet over
    expire: tuple[str, ...] = ()  # newly past their validity (over quota or not)


def enforce(
    configurations: Iterable[Configuration],
    statuses: Mapping[str, QuotaStatus],
    warn_ratio: float,
    today: date | None = None,
) -> Enforcement:
    """Quota and validity decide only over their own states: an operator's disable is never
    undone. Expiry goes first: an expired configuration is disabled as expired even when it is
    also over quota, and one renewed while still over quota stays off, now for its quota."""
    disable, enable, warn, expire = [], [], [], []
    for config in configurations:
        status = statuses.get(config.name)
        if status is None:
            continue
        reason = config.disabled_reason
        ours = config.enabled or reason in (DisabledReason.OVER_QUOTA, DisabledReason.EXPIRED)
        if not ours:
            continue
        if today is not None and expired(config, today):
            if config.enabled or reason != DisabledReason.EXPIRED:
                expire.append(config.name)
        elif status.over:
            if config.enabled or reason != DisabledReason.OVER_QUOTA:
                disable.append(config.name)
        elif not config.enabled:
            enable.append(config.name)
        elif status.allowance is not None and status.ratio() >= warn_ratio:
            warn.append(config.name)
    return Enforcement(
        tuple(sorted(disable)), tuple(sorted(enable)), tuple(sorted(warn)), tuple(sorted(expire))
    )
