"""Audit every node against the no-log promise: settings and behaviour, with evidence.

Behaviour means canaries: unique strings sent through the node's journal, its syslog socket and
a failed SSH login, then searched for on the node's disk, together with any text the caller
names (a lab client's underlay address after a WireGuard handshake, for example).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from orchestrator.adapters import ssh
from orchestrator.core.audit import (
    PROBES,
    Check,
    Probe,
    canary_checks,
    evaluate,
    parse_grep_hits,
    persistent_grep_command,
)
from orchestrator.core.audit_access import ControllerKeys, ExpectedKeys
from orchestrator.core.keys import live_public_keys, node_key_checks
from orchestrator.core.models import Node
from orchestrator.errors import NodeError, UsageError
from orchestrator.service.context import Fleet, writes
from orchestrator.service.controller_keys import authorized
from orchestrator.service.deploy import inventory_path, root_targets
from orchestrator.settings import Settings

PROBE_MARK = "@@wgfleet-probe"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class AuditResult:
    checks: tuple[Check, ...]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def failed_nodes(self) -> list[str]:
        return sorted({c.node for c in self.failed})

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed_nodes": self.failed_nodes,
            "checks": [c.__dict__ for c in self.checks],
        }


def _probe_script() -> str:
    parts = []
    for name, command in PROBES.items():
        parts.append(
            f"echo '{PROBE_MARK} {name}'; ( {command} ) 2>&1; echo \"{PROBE_MARK}-status $?\""
        )
    return "\n".join(parts) + "\n"


def parse_probe_output(text: str) -> dict[str, Probe]:
    probes: dict[str, Probe] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(f"{PROBE_MARK}-status ") and name is not None:
            # The node's words: a status that is not a small number is a failed probe (-1).
            status = line.removeprefix(f"{PROBE_MARK}-status ").strip()
            code = int(status) if status.isascii() and status.isdigit() and len(status) < 4 else -1
            probes[name] = Probe(code, "\n".join(lines))
            name, lines = None, []
        elif line.startswith(f"{PROBE_MARK} "):
            name, lines = line.removeprefix(f"{PROBE_MARK} ").strip(), []
        elif name is not None:
            lines.append(line)
    return probes


def _failed_login(target: ssh.Target, username: str) -> None:
    """A login attempt sshd must reject; its username is a canary."""
    with contextlib.suppress(NodeError):
        ssh.run_on(ssh.Target(**{**target.__dict__, "user": username}), ["true"], check=False)


@dataclass(frozen=True)
class KeyAudit:
    """What the key checks compare a node's live keys with: the store, read once per audit."""

    stored: dict[str, Node]
    max_age_days: int
    today: date

    def checks(self, name: str, probes: dict[str, Probe]) -> list[Check]:
        probe = probes.get("wireguard_public_keys")
        live = live_public_keys(probe.stdout if probe else "")
        return node_key_checks(name, self.stored.get(name), live, self.max_age_days, self.today)


def _public_line(private_key: Path, suffix: str = "") -> str | None:
    try:
        return (
            private_key.with_name(private_key.name + suffix + ".pub")
            .read_text(encoding="ascii")
            .strip()
        )
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def controller_keys(
    settings: Settings, others: Mapping[str, tuple[str, ...]] | None = None
) -> ControllerKeys:
    """The public keys the nodes' login accounts must hold: each controller key's ``.pub``,
    the ``.next.pub`` a key rotation under way made beside it, and ``others``, the other
    registered controllers' keys by purpose."""
    others = others or {}
    paths = {
        "deploy": settings.ssh.deploy_key,
        "collector": settings.ssh.collector_key,
        "push": settings.ssh.push_key,
    }
    return ControllerKeys(
        {
            purpose: ExpectedKeys.from_lines(
                [_public_line(path), *others.get(purpose, ())], [_public_line(path, ".next")]
            )
            for purpose, path in paths.items()
        }
    )


def audit_node(
    target: ssh.Target,
    needles: Iterable[str] = (),
    keys: KeyAudit | None = None,
    access: ControllerKeys | None = None,
) -> list[Check]:
    canaries = {
        "journal": f"wgfleet-canary-journal-{secrets.token_hex(8)}",
        "syslog": f"wgfleet-canary-syslog-{secrets.token_hex(8)}",
        "ssh_login": f"wgfleetcanary{secrets.token_hex(6)}",
    }
    extra = {f"text {needle}": needle for needle in needles}
    try:
        with ssh.NodeConnection(target) as connection:
            connection.run(
                ["systemd-cat", "-t", "wgfleet-audit", "echo", canaries["journal"]], check=False
            )
            connection.run(["logger", "-t", "wgfleet-audit", canaries["syslog"]], check=False)
            _failed_login(target, canaries["ssh_login"])
            # Make journald write out whatever it would keep, so persistence cannot hide.
            connection.run(["sh", "-c", "journalctl --flush >/dev/null 2>&1; sync"], check=False)
            probes = parse_probe_output(
                connection.run(["sh", "-c", _probe_script()], check=False, timeout=120).stdout
            )
            all_needles = {**canaries, **extra}
            grep = connection.run(
                ["sh", "-c", persistent_grep_command(all_needles.values())],
                check=False,
                timeout=300,
            )
    except NodeError as exc:
        return [Check(target.name, "reachable", False, str(exc))]
    hits = parse_grep_hits(grep.stdout, all_needles.values())
    found = {purpose: hits[needle] for purpose, needle in all_needles.items()}
    return [
        Check(target.name, "reachable", True, f"{target.address} over pinned SSH"),
        *evaluate(target.name, probes, access),
        *canary_checks(target.name, found),
        *(keys.checks(target.name, probes) if keys else []),
    ]


@writes
def audit(
    fleet: Fleet,
    *,
    limit: str | None = None,
    needles: Iterable[str] = (),
    progress: Progress = lambda _m: None,
    cancelled: Callable[[], bool] | None = None,
) -> AuditResult:
    """Audit every node; ``cancelled`` skips the nodes not started yet (they get no verdict).

    Writes each node's verdict (and queues an alert for a failed one): a writing session.
    """
    settings = fleet.settings
    fleet.record(f"audit {limit or 'all nodes'}")
    targets = root_targets(settings, limit)
    if not targets:
        raise UsageError(f"no nodes in {inventory_path(settings)}")
    needles = tuple(needles)
    stored = {n.name: n for n in fleet.store.nodes()}
    max_age = fleet.settings.keys.node_max_age_days  # a fleet file's policy, if applied
    keys = KeyAudit(stored, max_age, date.today())
    access = controller_keys(settings, authorized(fleet).extra)

    def one(target: ssh.Target) -> list[Check]:
        if cancelled is not None and cancelled():
            progress(f"{target.name}: skipped, cancelled")
            return []
        checks = audit_node(target, needles, keys, access)
        failed = sum(not c.passed for c in checks)
        progress(f"{target.name}: {len(checks) - failed} passed, {failed} failed")
        return checks

    with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
        results = list(pool.map(one, targets))
    result = AuditResult(tuple(check for checks in results for check in checks))
    _record_verdicts(fleet, result)
    return result


def _record_verdicts(fleet: Fleet, result: AuditResult) -> None:
    """Keep each node's pass or fail (no evidence, no time) for the fleet view."""
    verdicts: dict[str, bool] = {}
    for check in result.checks:
        verdicts[check.node] = verdicts.get(check.node, True) and check.passed
    from orchestrator.service import notify

    with fleet.store.transaction():
        notify.queue(fleet, "audit_failed", fleet.store.mark_audited(verdicts))
    notify.deliver_pending(fleet)
