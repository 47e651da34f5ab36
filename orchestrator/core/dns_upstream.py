"""The node resolver's upstream: forwarders as unbound's ``forward-addr`` takes them.

A forwarder is ``ADDRESS``, ``ADDRESS@PORT`` or, for DNS over TLS, ``ADDRESS@PORT#TLS-NAME``
(the name its certificate must carry). Only IP addresses: a name would need the resolver itself.
"""

from __future__ import annotations

import ipaddress
import re

MAX_FORWARDERS = 8
_TLS_NAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)


def forwarder_problem(value: object) -> str | None:
    """None when ``value`` is one forwarder unbound accepts, else what is wrong with it."""
    expected = "an IP address, ADDRESS@PORT or ADDRESS@PORT#TLS-NAME"
    if not isinstance(value, str) or not value or len(value) > 300:
        return expected
    rest, _, tls_name = value.partition("#")
    address, at, port = rest.partition("@")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return expected
    if at and not (port.isdigit() and 0 < int(port) < 65536):
        return "a port between 1 and 65535 after @"
    if "#" in value and not _TLS_NAME.match(tls_name):
        return "a host name after #"
    return None


def forwarders_problem(values: object) -> str | None:
    """None when ``values`` is a list of at most MAX_FORWARDERS valid, distinct forwarders."""
    if not isinstance(values, list):
        return "a list of forwarders"
    if len(values) > MAX_FORWARDERS:
        return f"at most {MAX_FORWARDERS} forwarders"
    for value in values:
        problem = forwarder_problem(value)
        if problem:
            return f"{value!r}: {problem}"
    if len(set(values)) != len(values):
        return "a forwarder is listed twice"
    return None


def resolver_extravars(forwarders: tuple[str, ...], forward_tls: bool) -> dict[str, object]:
    """The role resolver's fleet-wide variables for one deploy."""
    return {"wgfleet_dns_forwarders": list(forwarders), "wgfleet_dns_forward_tls": forward_tls}
