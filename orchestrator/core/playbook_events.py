"""Fold ansible-runner's event stream into per-host progress and results.

Plain dicts in, plain dataclasses out: the adapter feeds events, the CLI and TUI render them.
Only the fields named here are read; task results of tasks marked ``no_log`` arrive censored
by Ansible and are never copied.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

HOST_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


@dataclass(frozen=True)
class HostProgress:
    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    current_task: str = ""
    error: str = ""  # the first failure or unreachable message, one line
    changed_tasks: tuple[str, ...] = ()
    diffs: tuple[str, ...] = ()  # unified diffs of changed files (check/diff mode)

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        if self.changed:
            return "changed"
        return "ok"


@dataclass(frozen=True)
class PlayRecap:
    """The run so far, host by host."""

    hosts: Mapping[str, HostProgress] = field(default_factory=dict)
    finished: bool = False

    def host(self, name: str) -> HostProgress:
        return self.hosts.get(name, HostProgress(name))

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h.host for h in self.hosts.values() if h.status in ("failed", "unreachable"))

    @property
    def changed_total(self) -> int:
        return sum(h.changed for h in self.hosts.values())


def _one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _error_of(data: Mapping[str, Any]) -> str:
    result = data.get("res") or {}
    if not isinstance(result, Mapping):
        return ""
    if result.get("censored"):
        return "a task with a secret failed (output hidden by no_log)"
    for key in ("msg", "stderr", "reason"):
        if result.get(key):
            return _one_line(result[key])
    return ""


def apply_event(recap: PlayRecap, event: Mapping[str, Any]) -> PlayRecap:
    """The recap after one more event (pure; unknown events leave it unchanged)."""
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    if kind == "playbook_on_stats":
        return _apply_stats(recap, data)
    host = data.get("host")
    if not host:
        return recap
    current = recap.host(host)
    if kind == "runner_on_start":
        updated = replace(current, current_task=_one_line(data.get("task", ""), 120))
    elif kind in HOST_EVENTS:
        outcome = HOST_EVENTS[kind]
        if kind == "runner_on_failed" and data.get("ignore_errors"):
            outcome = "ok"
        changes: dict[str, Any] = {outcome: getattr(current, outcome) + 1}
        result = data.get("res") or {}
        if outcome == "ok" and isinstance(result, Mapping) and result.get("changed"):
            changes["changed"] = current.changed + 1
            changes["changed_tasks"] = (
                *current.changed_tasks,
                _one_line(data.get("task", ""), 120),
            )
            rendered = render_diff(result.get("diff"))
            if rendered:
                changes["diffs"] = (*current.diffs, rendered)
        if outcome in ("failed", "unreachable") and not current.error:
            task = _one_line(data.get("task", ""), 120)
            changes["error"] = f"{task}: {_error_of(data)}" if task else _error_of(data)
        updated = replace(current, **changes)
    else:
        return recap
    return replace(recap, hosts={**recap.hosts, host: updated})


def render_diff(diff: object) -> str:
    """Ansible's diff result (one or a list of before/after dicts) as unified diff text."""
    items = diff if isinstance(diff, list) else [diff] if isinstance(diff, Mapping) else []
    parts = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if "prepared" in item:
            parts.append(str(item["prepared"]))
            continue
        before, after = item.get("before"), item.get("after")
        if not isinstance(before, str) or not isinstance(after, str) or before == after:
            continue
        parts.append(
            "".join(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    fromfile=str(item.get("before_header", "before")),
                    tofile=str(item.get("after_header", "after")),
                )
            )
        )
    return "".join(parts)


def _apply_stats(recap: PlayRecap, data: Mapping[str, Any]) -> PlayRecap:
    """Ansible's own final counts win over ours (they include handlers and loops)."""
    names = set(recap.hosts)
    for key in ("ok", "changed", "failures", "dark", "skipped"):
        names.update((data.get(key) or {}).keys())
    hosts = {}
    for name in names:
        current = recap.host(name)
        hosts[name] = replace(
            current,
            ok=int((data.get("ok") or {}).get(name, current.ok)),
            changed=int((data.get("changed") or {}).get(name, current.changed)),
            failed=int((data.get("failures") or {}).get(name, current.failed)),
            unreachable=int((data.get("dark") or {}).get(name, current.unreachable)),
            skipped=int((data.get("skipped") or {}).get(name, current.skipped)),
            current_task="",
        )
    return PlayRecap(hosts=hosts, finished=True)


def with_refused(recap: PlayRecap, refused: Mapping[str, str]) -> PlayRecap:
    """``recap`` plus hosts wgfleet kept Ansible away from (host -> why), reported as
    unreachable like any host Ansible could not reach."""
    if not refused:
        return recap
    hosts = dict(recap.hosts)
    for name, reason in refused.items():
        hosts[name] = HostProgress(name, unreachable=1, error=_one_line(reason, 600))
    return replace(recap, hosts=hosts)
