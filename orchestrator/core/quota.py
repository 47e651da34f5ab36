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
from datetime import date

from orchestrator.core.models import (
    Configuration,
    DisabledReason,
    Plan,
    ResetRule,
    TopUp,
    UsageTotal,
)

NEVER_RESETS = date(1970, 1, 1)  # the single billing period of a quota that never resets


def period_start(plan: Plan | None, today: date) -> date:
    if plan is None or plan.reset == ResetRule.NEVER:
        return NEVER_RESETS
    if today.day >= plan.anchor_day:
        return today.replace(day=plan.anchor_day)
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return date(year, month, plan.anchor_day)


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Enforcement:
    disable: tuple[str, ...]  # newly over quota
    enable: tuple[str, ...]  # were cut off for quota, now under it again
    warn: tuple[str, ...]  # enabled, at or above the warning threshold, not yet over


def enforce(
    configurations: Iterable[Configuration],
    statuses: Mapping[str, QuotaStatus],
    warn_ratio: float,
) -> Enforcement:
    """Quota decides only over quota-related states: an operator's disable is never undone."""
    disable, enable, warn = [], [], []
    for config in configurations:
        status = statuses.get(config.name)
        if status is None:
            continue
        if config.enabled and status.over:
            disable.append(config.name)
        elif (
            not config.enabled
            and config.disabled_reason == DisabledReason.OVER_QUOTA
            and not status.over
        ):
            enable.append(config.name)
        elif config.enabled and status.allowance is not None and status.ratio() >= warn_ratio:
            warn.append(config.name)
    return Enforcement(tuple(sorted(disable)), tuple(sorted(enable)), tuple(sorted(warn)))
