"""wg-quick configuration files: parse them strictly and strip them to what `wg setconf` reads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from orchestrator.core.errors import InvalidInput
from orchestrator.core.quoting import quote

# Keys wg-quick consumes itself; `wg setconf` rejects them (this is `wg-quick strip`).
WG_QUICK_ONLY = {
    "address",
    "dns",
    "mtu",
    "table",
    "preup",
    "postup",
    "predown",
    "postdown",
    "saveconfig",
}
INTERFACE_KEYS = WG_QUICK_ONLY | {"privatekey", "listenport", "fwmark"}
PEER_KEYS = {"publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive"}


class WgQuickError(InvalidInput):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}")


@dataclass
class Section:
    name: str
    line: int
    values: list[tuple[str, str, int]] = field(default_factory=list)  # (key, value, line)

    def get(self, key: str) -> str | None:
        for name, value, _line in self.values:
            if name.lower() == key:
                return value
        return None

    def get_all(self, key: str) -> list[str]:
        return [value for name, value, _line in self.values if name.lower() == key]


@dataclass(frozen=True)
class WgQuickConfig:
    interface: Section
    peers: tuple[Section, ...]

    @property
    def addresses(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        found: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
        for value in self.interface.get_all("address"):
            found.extend(ipaddress.ip_interface(part.strip()) for part in value.split(","))
        return found

    def allowed_ips(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        found: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for peer in self.peers:
            for value in peer.get_all("allowedips"):
                found.extend(
                    ipaddress.ip_network(part.strip(), strict=False)
                    for part in value.split(",")
                    if part.strip()
                )
        return found

    def stripped(self) -> str:
        """The config without wg-quick-only keys: input for `wg setconf`/`wg syncconf`."""
        lines = ["[Interface]"]
        lines += [
            f"{k} = {v}" for k, v, _ in self.interface.values if k.lower() not in WG_QUICK_ONLY
        ]
        for peer in self.peers:
            lines += ["", "[Peer]"]
            lines += [f"{k} = {v}" for k, v, _ in peer.values]
        return "\n".join(lines) + "\n"


def parse_wg_quick(text: str) -> WgQuickConfig:
    interface: Section | None = None
    peers: list[Section] = []
    current: Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip().lower()
            if name == "interface":
                if interface is not None:
                    raise WgQuickError(number, "a second [Interface] section")
                interface = current = Section("Interface", number)
            elif name == "peer":
                current = Section("Peer", number)
                peers.append(current)
            else:
                raise WgQuickError(number, f"unknown section {line}")
            continue
        if current is None:
            raise WgQuickError(number, "a setting before any section")
        key, sep, value = line.partition("=")
        if not sep:
            raise WgQuickError(number, f"expected 'Key = value', got {quote(line)}")
        key, value = key.strip(), value.strip()
        allowed = INTERFACE_KEYS if current.name == "Interface" else PEER_KEYS
        if key.lower() not in allowed:
            raise WgQuickError(number, f"unknown key {quote(key)} in [{current.name}]")
        if key.lower() == "saveconfig" and value.lower() == "true":
            raise WgQuickError(number, "SaveConfig would write live peer state to disk")
        current.values.append((key, value, number))
    if interface is None:
        raise WgQuickError(1, "no [Interface] section")
    if interface.get("privatekey") is None:
        raise WgQuickError(interface.line, "[Interface] has no PrivateKey")
    for peer in peers:
        if peer.get("publickey") is None:
            raise WgQuickError(peer.line, "[Peer] has no PublicKey")
    try:
        config = WgQuickConfig(interface, tuple(peers))
        config.addresses  # noqa: B018 - validate now, not when used
        config.allowed_ips()
    except ValueError as exc:
        raise WgQuickError(interface.line, str(exc)) from None
    return config
