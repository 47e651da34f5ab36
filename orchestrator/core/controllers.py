"""Controllers as plain data: each controller of a fleet (a machine with its own data directory)
has its own three SSH keys, registered by name with their public halves; the nodes accept the
keys of every controller registered and not revoked, and refuse a revoked one's.

Pure: reading key files, the store and the nodes are the service's and the adapters'.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from orchestrator.core.errors import InvalidInput
from orchestrator.core.inventory import key_fingerprint, parse_public_key
from orchestrator.core.quoting import quote

# The controller's SSH key purposes, in the order a controller row keeps them.
PURPOSES = ("deploy", "collector", "push")
CONTROLLER_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_BLOB_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def check_controller_name(name: str) -> None:
    if not CONTROLLER_NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"controller name {quote(name)}: lowercase letters, digits, '.', '_' or '-', "
            "at most 63, starting with a letter or digit"
        )


def key_line(text: str, where: str) -> str:
    """``TYPE BLOB`` of one OpenSSH public key line (its comment dropped): what a node's
    authorized_keys gets. ``where`` names the file or field for the error."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise InvalidInput(f"{where}: expected one OpenSSH public key line, not {len(lines)}")
    try:
        key_type, blob = parse_public_key(lines[0])
    except InvalidInput:
        raise InvalidInput(f"{where}: not an OpenSSH public key: {quote(lines[0], 40)}") from None
    if not _BLOB_RE.fullmatch(blob):
        raise InvalidInput(f"{where}: the key {quote(blob, 20)} is not base64")
    return f"{key_type} {blob}"


def key_blob(line: str) -> str:
    return line.split()[1]


@dataclass(frozen=True)
class Controller:
    """One controller: its name, its public keys by purpose, the day registered, the day
    revoked (None while it may reach the nodes)."""

    name: str
    keys: Mapping[str, str]  # purpose -> "TYPE BLOB"
    added_on: date
    revoked_on: date | None = None

    @property
    def active(self) -> bool:
        return self.revoked_on is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": "active" if self.active else "revoked",
            "added_on": self.added_on.isoformat(),
            "revoked_on": self.revoked_on.isoformat() if self.revoked_on else None,
            "fingerprints": {p: key_fingerprint(key_blob(self.keys[p])) for p in PURPOSES},
        }


@dataclass(frozen=True)
class AuthorizedControllers:
    """What every node's login accounts must hold beside the running controller's own keys:
    per purpose, the other active controllers' keys (``extra``) and the revoked controllers'
    keys (``revoked``), none of them the running controller's own."""

    extra: Mapping[str, tuple[str, ...]]
    revoked: Mapping[str, tuple[str, ...]]


def authorized_controllers(
    controllers: Iterable[Controller], own: Mapping[str, str]
) -> AuthorizedControllers:
    """The keys to add and to remove on the nodes, given every registered controller and the
    running controller's own keys (purpose -> key line). A key that is both active somewhere
    and revoked elsewhere (a key copied between data directories) counts as revoked: the
    nodes refuse it, the safe side."""
    own_blobs = {p: key_blob(line) for p, line in own.items()}
    revoked: dict[str, list[str]] = {p: [] for p in PURPOSES}
    extra: dict[str, list[str]] = {p: [] for p in PURPOSES}
    listed = sorted(controllers, key=lambda c: c.name)
    for controller in listed:
        if not controller.active:
            for purpose in PURPOSES:
                revoked[purpose].append(controller.keys[purpose])
    revoked_blobs = {p: {key_blob(k) for k in keys} for p, keys in revoked.items()}
    for controller in listed:
        if controller.active:
            for purpose in PURPOSES:
                line = controller.keys[purpose]
                blob = key_blob(line)
                skipped = {own_blobs.get(purpose), *revoked_blobs[purpose]}
                skipped |= {key_blob(k) for k in extra[purpose]}
                if blob not in skipped:
                    extra[purpose].append(line)
    return AuthorizedControllers(
        {p: tuple(v) for p, v in extra.items()},
        {p: tuple(k for k in v if key_blob(k) != own_blobs.get(p)) for p, v in revoked.items()},
    )


def check_new_controller(existing: Iterable[Controller], new: Controller) -> None:
    """A controller's keys are its own: none may be registered to another controller already
    (revoked ones count: reusing a revoked key would let it back in)."""
    for other in existing:
        for purpose in PURPOSES:
            for mine in PURPOSES:
                if key_blob(other.keys[purpose]) == key_blob(new.keys[mine]):
                    raise InvalidInput(
                        f"controller {new.name}: its {mine} key "
                        f"{key_fingerprint(key_blob(new.keys[mine]))} is already controller "
                        f"{other.name}'s {purpose} key"
                    )
    if len({key_blob(k) for k in new.keys.values()}) != len(PURPOSES):
        raise InvalidInput(f"controller {new.name}: its three keys must differ")


def leftover_keys(authorized_keys: str, controller: Controller) -> list[str]:
    """The controller's keys (``purpose fingerprint``) still found in ``authorized_keys``
    text (a node's files read back after a revocation)."""
    found = {word for line in authorized_keys.splitlines() for word in line.split()}
    return [
        f"{purpose} {key_fingerprint(key_blob(controller.keys[purpose]))}"
        for purpose in PURPOSES
        if key_blob(controller.keys[purpose]) in found
    ]
