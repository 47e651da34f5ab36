"""A listening address as given on a command line: ``ADDR:PORT``, an IPv6 literal in brackets."""

from __future__ import annotations

import ipaddress

from orchestrator.core.errors import InvalidInput
from orchestrator.core.quoting import quote

# Loopback: a reverse proxy (or the operator) decides what reaches it from outside.
DEFAULT_LISTEN = "127.0.0.1:8787"


def parse_listen(text: str, option: str = "--listen", *, lowest_port: int = 1) -> tuple[str, int]:
    """(host, port) of ``127.0.0.1:8787`` or ``[::1]:8787``; the host must be an IP literal
    (a name could resolve to an address nobody meant to expose). ``lowest_port`` 0 lets the
    kernel choose a free port."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise InvalidInput(
            f"{option} {quote(text)}: give ADDR:PORT, e.g. 127.0.0.1:8787 or [::1]:8787"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        family = 6
    else:
        family = 4
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput(
            f"{option} {quote(text)}: {quote(host)} is not an IP address: give an IPv4 literal "
            "or an IPv6 one in brackets, e.g. [::1]:8787"
        ) from None
    if address.version != family:
        raise InvalidInput(f"{option} {quote(text)}: an IPv6 address goes in brackets")
    if not (port_text.isascii() and port_text.isdigit()) or not (
        lowest_port <= int(port_text) <= 65535
    ):
        raise InvalidInput(f"{option} {quote(text)}: the port must be {lowest_port} to 65535")
    return str(address), int(port_text)
