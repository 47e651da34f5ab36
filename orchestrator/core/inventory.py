"""The Ansible inventory and the pinned known_hosts file, as plain data and text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.core.errors import InvalidInput
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
        raise InvalidInput(f"not an OpenSSH public key: {quote(text, 40)}")
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


def known_host_name(address: str, port: int = SSH_PORT) -> str:
    """The name a host's key is pinned under, as OpenSSH and paramiko look it up."""
    return address if port == SSH_PORT else f"[{address}]:{port}"


def host_name_matches(entry: str, name: str) -> bool:
    """Whether one name field of a known_hosts line (plain or ``|1|salt|hash``) is ``name``.

    Wildcards and negations are never matched: a pin names exactly one host.
    """
    if not entry.startswith("|1|"):
        return entry == name
    parts = entry.split("|")
    if len(parts) != 4:
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        expected = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    digest = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class PinnedKey:
    """One usable pin: the key type and the base64 blob."""

    key_type: str
    key_base64: str

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key_base64)


def _pin_line(line: str) -> tuple[list[str], PinnedKey] | None:
    """The names and key of a known_hosts line, or None for comments, markers and junk.

    ``@cert-authority`` and ``@revoked`` lines are never pins (wgfleet writes neither).
    """
    parts = line.split()
    if len(parts) < 3 or parts[0].startswith(("#", "@")):
        return None
    try:
        base64.b64decode(parts[2], validate=True)
    except ValueError:
        return None
    return parts[0].split(","), PinnedKey(parts[1], parts[2])


@dataclass(frozen=True)
class PinIndex:
    """A known_hosts file's pins, indexed once: plain names in a dict, hashed ones in a list
    (each checked in turn, as only a hash of the name can find them)."""

    plain: Mapping[str, tuple[PinnedKey, ...]]
    hashed: tuple[tuple[tuple[str, ...], PinnedKey], ...]

    def lookup(self, name: str) -> list[PinnedKey]:
        found = list(self.plain.get(name, ()))
        for entries, key in self.hashed:
            if any(host_name_matches(entry, name) for entry in entries):
                found.append(key)
        return found


def index_pins(text: str) -> PinIndex:
    """Every pin of ``text`` (a known_hosts file), in one linear pass."""
    plain: dict[str, list[PinnedKey]] = {}
    hashed = []
    for line in text.splitlines():
        parsed = _pin_line(line)
        if parsed is None:
            continue
        names, key = parsed
        for name in names:
            if name.startswith("|1|"):
                hashed.append(((name,), key))
            else:
                plain.setdefault(name, []).append(key)
    return PinIndex({n: tuple(keys) for n, keys in plain.items()}, tuple(hashed))


def pins_for(text: str, name: str) -> list[PinnedKey]:
    """Every key ``text`` (a known_hosts file) pins for the host name ``name``."""
    return index_pins(text).lookup(name)


def replace_pins(text: str, names: Sequence[str], pin: HostKey) -> tuple[str, list[PinnedKey]]:
    """``text`` with every pin of any of ``names`` (plain or hashed) replaced by ``pin``.

    Every other line (other hosts, comments, markers) is kept as it was, so the old key of a
    host can never stay trusted beside the new one. Returns the new text and the removed pins.
    """
    kept, removed = [], []
    for line in text.splitlines():
        parsed = _pin_line(line)
        if parsed and any(host_name_matches(e, n) for e in parsed[0] for n in names):
            removed.append(parsed[1])
            continue
        kept.append(line)
    kept.append(pin.line())
    return "".join(f"{line}\n" for line in kept), removed


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


def _openssh_value(option: str, value: str) -> str:
    """``value`` as OpenSSH reads it back: ``%`` escaped (paths expand tokens), and refused
    if a quote, backslash or control character could end or bend the quoted value."""
    if any(ch in value for ch in '"\\') or any(ord(ch) < 32 for ch in value):
        raise InvalidInput(f"{option}: {value!r} holds a quote, backslash or control character")
    return value.replace("%", "%%")


def _openssh_option(option: str, value: str) -> str:
    """``-o Option="value"``, quoted for Ansible's shlex split and OpenSSH's own parser."""
    return "-o " + shlex.quote(f'{option}="{value}"')


def pinned_connection_vars(
    *,
    known_hosts: str,
    private_key: str,
    control_dir: str,
    executables: Mapping[str, str],
) -> dict[str, Any]:
    """Extra vars that make every Ansible connection trust exactly the pinned host keys.

    Extra vars have Ansible's highest precedence, so whatever an inventory, a group_vars file,
    ``ansible.cfg``, the environment or ``~/.ssh/config`` says is overridden: the connection is
    always OpenSSH (never paramiko or local), its own config files are not read (``-F
    /dev/null``), every option that trusts a host key is set first (OpenSSH keeps the first
    value of an option) and every other argument variable is emptied so nothing can follow.
    Connections are multiplexed only through ``control_dir``, which belongs to one run.
    ``executables`` maps ssh, sftp and scp to the programs to run.
    """
    control_path = _openssh_value("ControlPath", control_dir) + "/%C"  # the token is ours
    args = [
        "-F /dev/null",
        "-C",
        "-o ControlMaster=auto",
        "-o ControlPersist=60s",
        _openssh_option("ControlPath", control_path),
        _openssh_option("UserKnownHostsFile", _openssh_value("known_hosts", known_hosts)),
        "-o GlobalKnownHostsFile=/dev/null",
        "-o StrictHostKeyChecking=yes",
        "-o UpdateHostKeys=no",
        "-o CheckHostIP=no",
        "-o VerifyHostKeyDNS=no",
        "-o KnownHostsCommand=none",
        "-o BatchMode=yes",
        "-o PasswordAuthentication=no",
        "-o KbdInteractiveAuthentication=no",
        _openssh_option("IdentityFile", _openssh_value("deploy_key", private_key)),
        "-o IdentitiesOnly=yes",
        "-o IdentityAgent=none",
        "-o ForwardAgent=no",
        "-o KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org",
    ]
    return {
        "ansible_connection": "ansible.builtin.ssh",
        "ansible_ssh_executable": executables["ssh"],
        "ansible_sftp_executable": executables["sftp"],
        "ansible_scp_executable": executables["scp"],
        "ansible_ssh_args": " ".join(args),
        "ansible_ssh_common_args": "",
        "ansible_ssh_extra_args": "",
        "ansible_sftp_extra_args": "",
        "ansible_scp_extra_args": "",
        "ansible_host_key_checking": True,
        "ansible_ssh_host_key_checking": True,
        "ansible_ssh_private_key_file": private_key,
        "ansible_private_key_file": private_key,
        "ansible_ssh_private_key": "",
        "ansible_private_key": "",
        "ansible_control_path_dir": control_dir,
    }


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


class InventoryShapeError(InvalidInput):
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
