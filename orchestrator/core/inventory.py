"""The Ansible inventory and the pinned known_hosts file, as plain data and text."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.core.quoting import quote

SSH_PORT = 22


@dataclass(frozen=True)
class HostKey:
    """One pinned host key: the names a node is known by, and its public key."""

    names: tuple[str, ...]
    key_type: str
    key_base64: str

    def line(self) -> str:
        return f"{','.join(self.names)} {self.key_type} {self.key_base64}"


def parse_public_key(text: str) -> tuple[str, str]:
    """``"ssh-ed25519 AAAA... comment"`` -> ``("ssh-ed25519", "AAAA...")``."""
    parts = text.split()
    if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
        raise ValueError(f"not an OpenSSH public key: {quote(text, 40)}")
    return parts[0], parts[1]


def key_fingerprint(key_base64: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob given in base64."""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def render_known_hosts(keys: Iterable[HostKey]) -> str:
    return "".join(f"{key.line()}\n" for key in keys)


def parse_known_hosts(text: str) -> list[HostKey]:
    """The pins of a known_hosts file as wgfleet writes it (no hashed names, no markers)."""
    keys = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.startswith(("#", "@")):
            keys.append(HostKey(tuple(parts[0].split(",")), parts[1], parts[2]))
    return keys


def public_key_fingerprint(line: str) -> str:
    """The SHA256 fingerprint of an OpenSSH public key line."""
    return key_fingerprint(parse_public_key(line)[1])


@dataclass(frozen=True)
class InventoryHost:
    name: str
    address: ipaddress.IPv4Address
    variables: Mapping[str, Any]


def ssh_common_args(known_hosts: str) -> str:
    """OpenSSH options that make Ansible trust only the pinned keys, never prompt or learn."""
    return " ".join(
        [
            f"-o UserKnownHostsFile={known_hosts}",
            "-o StrictHostKeyChecking=yes",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o UpdateHostKeys=no",
            "-o PasswordAuthentication=no",
            "-o KbdInteractiveAuthentication=no",
            "-o KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org",
        ]
    )


def render_inventory(
    group: str,
    hosts: Iterable[InventoryHost],
    *,
    private_key: str,
    known_hosts: str,
    group_vars: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An Ansible YAML inventory: one group of nodes with connection settings pinned."""
    connection = {
        "ansible_user": "root",
        "ansible_port": SSH_PORT,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_private_key_file": private_key,
        "ansible_ssh_common_args": ssh_common_args(known_hosts),
        "wgfleet_known_hosts": known_hosts,
    }
    return {
        "all": {
            "children": {
                group: {
                    "hosts": {
                        host.name: {"ansible_host": str(host.address), **dict(host.variables)}
                        for host in hosts
                    },
                    "vars": {**connection, **dict(group_vars or {})},
                }
            }
        }
    }


class InventoryShapeError(ValueError):
    """A part of the inventory is not the mapping Ansible's YAML inventory needs there."""

    def __init__(self, where: str, value: object) -> None:
        self.where = where
        self.value = value
        super().__init__(f"{where}: expected a mapping")


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InventoryShapeError(where, value)
    return value


def inventory_hosts(inventory: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every host of an inventory in the shape above, with its group vars merged under its own.
    Raises InventoryShapeError naming the first part that is not a mapping."""
    found: dict[str, dict[str, Any]] = {}

    def walk(group: Mapping[str, Any], inherited: Mapping[str, Any], where: str) -> None:
        merged = {**inherited, **_mapping(group.get("vars"), f"{where}.vars")}
        for name, variables in _mapping(group.get("hosts"), f"{where}.hosts").items():
            found[str(name)] = {**merged, **_mapping(variables, f"{where}.hosts.{name}")}
        for child_name, child in _mapping(group.get("children"), f"{where}.children").items():
            child_where = f"{where}.children.{child_name}"
            walk(_mapping(child, child_where), merged, child_where)

    for name, top in _mapping(inventory, "(top level)").items():
        walk(_mapping(top, str(name)), {}, str(name))
    return found
