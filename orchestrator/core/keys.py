"""Key age policy: every key the fleet uses, how old it is and whether it is overdue.

Ages are whole days between the key's creation date and today; a key whose creation date is
unknown (made before wgfleet recorded it) counts as overdue, because nobody can vouch for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from orchestrator.core.audit import Check
from orchestrator.core.errors import InvalidInput
from orchestrator.core.models import Node
from orchestrator.core.quoting import quote

_DURATION_RE = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``30s``, ``15m``, ``12h`` or ``7d`` in seconds; a bare ``0`` means none."""
    if text.strip() == "0":
        return 0
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise InvalidInput(f"{quote(text)} is not a duration such as 30s, 15m, 12h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class KeyKind(StrEnum):
    NODE = "node"  # a node's WireGuard key
    PEER = "peer"  # a configuration's client key pair
    PSK = "psk"  # a configuration's preshared key
    SSH = "ssh"  # one of the controller's SSH keys


@dataclass(frozen=True)
class KeyPolicy:
    max_age_days: dict[KeyKind, int]


@dataclass(frozen=True)
class KeyRecord:
    kind: KeyKind
    subject: str  # node, configuration or SSH key purpose
    public: str  # public key, fingerprint or secret reference: never key material
    created_on: date | None
    note: str = ""  # e.g. "rotation in progress until ..."


@dataclass(frozen=True)
class KeyAge:
    record: KeyRecord
    age_days: int | None
    max_age_days: int

    @property
    def overdue(self) -> bool:
        return self.age_days is None or self.age_days > self.max_age_days

    @property
    def due_in_days(self) -> int | None:
        return None if self.age_days is None else self.max_age_days - self.age_days

    def as_dict(self) -> dict[str, object]:
        r = self.record
        return {
            "kind": str(r.kind),
            "subject": r.subject,
            "public": r.public,
            "created_on": r.created_on.isoformat() if r.created_on else None,
            "age_days": self.age_days,
            "max_age_days": self.max_age_days,
            "overdue": self.overdue,
            "note": r.note,
        }

    def cells(self) -> tuple[str, str, str, str, str, str, str]:
        """The row both UIs show: kind, subject, created, age, max age, status, note (the UI
        styles the status: red when overdue)."""
        r = self.record
        return (
            str(r.kind),
            r.subject,
            str(r.created_on or "unknown"),
            "-" if self.age_days is None else str(self.age_days),
            str(self.max_age_days),
            "overdue" if self.overdue else f"due in {self.due_in_days} d",
            r.note,
        )


def key_ages(records: Iterable[KeyRecord], policy: KeyPolicy, today: date) -> list[KeyAge]:
    """Each record with its age, sorted overdue first, then oldest first."""
    ages = [
        KeyAge(
            r,
            None if r.created_on is None else max(0, (today - r.created_on).days),
            policy.max_age_days[r.kind],
        )
        for r in records
    ]
    return sorted(
        ages,
        key=lambda a: (
            not a.overdue,
            -(a.age_days if a.age_days is not None else 10**9),
            a.record.kind,
            a.record.subject,
        ),
    )


def live_public_keys(probe_output: str) -> dict[str, str]:
    """``wg show`` per interface, as the audit probe prints it: interface -> public key."""
    keys = {}
    for line in probe_output.splitlines():
        parts = line.split()
        if len(parts) == 2:
            keys[parts[0]] = parts[1]
    return keys


def node_key_checks(
    name: str, node: Node | None, live: dict[str, str], max_age_days: int, today: date
) -> list[Check]:
    """The node's WireGuard key: the one the store hands to clients, and not overdue."""
    if node is None or node.public_key is None:
        return [Check(name, "wireguard.key_registered", False, "not in the store: deploy it")]
    expected = {node.interface: node.public_key}
    if node.next_public_key:
        expected[f"{node.interface}n"] = node.next_public_key
    mismatched = [
        f"{iface} holds {live.get(iface, 'nothing')}, the store {key}"
        for iface, key in expected.items()
        if live.get(iface) != key
    ]
    age = None if node.key_created_on is None else (today - node.key_created_on).days
    return [
        Check(
            name,
            "wireguard.key_matches_store",
            not mismatched,
            "; ".join(mismatched) or f"{', '.join(sorted(expected))} as in the store",
        ),
        Check(
            name,
            "wireguard.key_age",
            age is not None and age <= max_age_days,
            f"created {node.key_created_on or 'unknown'}, {age if age is not None else '?'} days "
            f"old, at most {max_age_days}: `wgfleet keys rotate node {name} --overlap`",
        ),
    ]
