"""The fleet's records as plain values. What is here is all wgfleet ever keeps about a user.

No record carries a time of user activity: dates exist only for purchases (top-ups), billing
periods and key creation, the only instants are the ends of grace periods an operator set for
a key rotation, and usage is a running total per configuration per billing period.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from orchestrator.core.node_protocol import WIREGUARD_INTERFACE, WIREGUARD_PORT


class DisabledReason(StrEnum):
    OPERATOR = "operator"
    OVER_QUOTA = "over_quota"
    EXPIRED = "expired"


class ResetRule(StrEnum):
    NEVER = "never"
    MONTHLY = "monthly"


@dataclass(frozen=True)
class Node:
    name: str
    address: str  # underlay address the controller reaches it at
    tunnel_network: ipaddress.IPv4Network
    listen_port: int = WIREGUARD_PORT
    interface: str = WIREGUARD_INTERFACE
    public_key: str | None = None  # read back from the node; its private key never leaves it
    key_created_on: date | None = None
    # A key rotation with overlap: the next key serves on a second interface and port until
    # ``next_key_expires`` (unix seconds, set by the operator), then replaces the current one.
    next_public_key: str | None = None
    next_listen_port: int | None = None
    next_key_expires: int | None = None
    next_key_created_on: date | None = None
    # The node's IPv6 tunnel /64 inside the fleet's prefix (None until the store gave it one),
    # and the host clients' Endpoint names when it is not ``address`` (an IPv6 underlay).
    tunnel_network6: ipaddress.IPv6Network | None = None
    endpoint_host: str | None = None

    @property
    def rotating(self) -> bool:
        return self.next_public_key is not None

    @property
    def issued_key(self) -> str | None:
        """The key new client configs name: the next one while a rotation overlaps."""
        return self.next_public_key or self.public_key

    @property
    def issued_port(self) -> int:
        return self.next_listen_port or self.listen_port

    @property
    def node_tunnel_address(self) -> ipaddress.IPv4Address:
        return self.tunnel_network[1]

    @property
    def node_tunnel_address6(self) -> ipaddress.IPv6Address | None:
        return None if self.tunnel_network6 is None else self.tunnel_network6[1]

    @property
    def endpoint(self) -> str:
        """``host:port`` of the Endpoint line of new client configs (IPv6 in brackets)."""
        host = self.endpoint_host or self.address
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.issued_port}"


@dataclass(frozen=True)
class Plan:
    name: str
    quota_bytes: int
    reset: ResetRule = ResetRule.NEVER
    anchor_day: int = 1  # monthly plans reset on this day of the month (1-28)
    price: str | None = None
    # A plan may be valid for a number of days from activation (or renewal), and/or until a
    # fixed last day; a configuration past its validity is cut off like one over quota.
    validity_days: int | None = None
    valid_until: date | None = None


@dataclass(frozen=True)
class Account:
    username: str
    password_hash: str
    device_id: str
    contact: str | None = None


@dataclass(frozen=True, slots=True)  # a sync holds 100,000 of them: no per-instance dict
class Configuration:
    """One WireGuard peer a user bought quota for; its identity outlives key rotation."""

    name: str
    account: str
    public_key: str
    psk_ref: str | None  # names the preshared key in the controller's secret store
    addresses: dict[str, ipaddress.IPv4Address] = field(default_factory=dict)  # node -> address
    plan: str | None = None
    quota_bytes: int | None = None  # an explicit quota instead of (or before) a plan's
    enabled: bool = True
    disabled_reason: DisabledReason | None = None
    key_created_on: date | None = None
    psk_created_on: date | None = None
    # During a peer key rotation the replaced key keeps working until ``previous_key_expires``
    # (unix seconds, the operator's grace); its usage still counts for this configuration.
    previous_public_key: str | None = None
    previous_psk_ref: str | None = None
    previous_key_expires: int | None = None
    valid_until: date | None = None  # the last day it may be used; None: no expiry
    # The networks its client routes through the tunnel, when the operator chose a split
    # tunnel for it (canonical, comma-separated); None: everything (0.0.0.0/0, ::/0).
    split_tunnel: str | None = None

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(sorted(self.addresses))


# Operations kept in the store's trail: a sync every minute fills a week; older ones go.
OPERATIONS_KEPT = 10_000


@dataclass(frozen=True)
class Operation:
    """One writing session of a controller: what ran, where, when (unix seconds), how it ended
    ("ok", or the error's kind and exit code), and how many steps it took. An operator's run,
    never a user's activity: it names no account, configuration or key."""

    operation: str
    controller: str
    started_at: int
    finished_at: int
    outcome: str
    steps: int
    # The API token that made the change (its name, never its secret); None: not the API.
    actor: str | None = None


@dataclass(frozen=True)
class TopUp:
    invoice: str
    configuration: str | None  # None once the account was deleted: the ledger stays
    amount: str  # a decimal string as billed, never a float
    bytes_granted: int
    purchased_on: date

    def outcome(self, created: bool) -> str:
        """What recording this top-up did, for the operator (an invoice is granted once)."""
        if created:
            return (
                f"invoice {self.invoice}: granted {self.bytes_granted} bytes to "
                f"{self.configuration}"
            )
        return (
            f"invoice {self.invoice} was already recorded ({self.bytes_granted} bytes to "
            f"{self.configuration}); nothing granted again"
        )


@dataclass(frozen=True, slots=True)
class UsageTotal:
    configuration: str
    period_start: date
    rx_bytes: int
    tx_bytes: int

    @property
    def total(self) -> int:
        return self.rx_bytes + self.tx_bytes
