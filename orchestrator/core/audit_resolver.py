"""Judge a node's resolver (unbound, role resolver) against the no-log promise.

The probes read unbound's effective settings (``unbound-checkconf -o``, which resolves every
include and default the way the daemon does) and its live sockets (``ss``); the checks pass
only when it logs nothing, counts nothing, keeps its cache in memory and listens only on the
node's tunnel addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from orchestrator.core.audit_text import Finding, key_values

# Effective settings that decide what unbound writes or exposes.
RESOLVER_OPTIONS = (
    "verbosity",
    "logfile",
    "use-syslog",
    "log-queries",
    "log-replies",
    "log-servfail",
    "log-local-actions",
    "statistics-interval",
    "extended-statistics",
    "control-enable",
    "module-config",
    "auto-trust-anchor-file",
    "port",
    "interface",
)
# Each option on one line: "name<TAB>value value ..." (interface may repeat).
RESOLVER_PROBES: dict[str, str] = {
    "resolver_active": "systemctl is-active unbound.service 2>&1 || true",
    "resolver_settings": "command -v unbound-checkconf >/dev/null || exit 0; "
    f"for o in {' '.join(RESOLVER_OPTIONS)}; do "
    'printf "%s\\t%s\\n" "$o" "$(unbound-checkconf -o $o 2>&1 | tr "\\n" " ")"; done',
    "resolver_sockets": "ss -Hlnup 2>/dev/null | grep '\"unbound\"' | sed 's/^/udp /'; "
    "ss -Hlntp 2>/dev/null | grep '\"unbound\"' | sed 's/^/tcp /'; true",
    "tunnel_addresses": "for i in $(wg show interfaces 2>/dev/null); do "
    "ip -o addr show dev $i; done; true",
}
QUERY_LOG_OPTIONS = ("log-queries", "log-replies", "log-servfail", "log-local-actions")


def parse_settings(text: str) -> dict[str, str]:
    """``unbound-checkconf -o``'s NAME<tab>VALUE lines, the options the audit judges."""
    values = key_values(text, "\t")
    return {name: value for name, value in values.items() if name in RESOLVER_OPTIONS}


def tunnel_addresses(text: str) -> set[str]:
    """The addresses of the WireGuard interfaces, from ``ip -o addr show dev IFACE`` lines."""
    found = set()
    for line in text.splitlines():
        words = line.split()
        for family in ("inet", "inet6"):
            if family in words and words.index(family) + 1 < len(words):
                address = words[words.index(family) + 1].split("/")[0]
                found.add(_normal(address))
    return found


def _normal(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.strip("[]").split("%")[0]))
    except ValueError:
        return address


def listening_addresses(text: str, port: str) -> list[tuple[str, str]]:
    """(protocol, local address) of unbound's sockets serving DNS: every TCP listener and the
    UDP sockets on its port (its outgoing queries use other, connected, UDP sockets)."""
    sockets = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 5:
            continue
        protocol, local = words[0], words[4]
        address, _, local_port = local.rpartition(":")
        if protocol == "udp" and local_port != port:
            continue
        sockets.append((protocol, f"{_normal(address)}:{local_port}"))
    return sockets


def resolver_findings(outputs: Mapping[str, str]) -> list[Finding]:
    active = outputs.get("resolver_active", "").strip()
    settings = parse_settings(outputs.get("resolver_settings", ""))
    findings = [Finding("resolver.active", active == "active", f"unbound.service {active or '-'}")]
    if not settings:
        findings.append(Finding("resolver.settings", False, "unbound-checkconf gave no settings"))
        return findings

    def shown(*names: str) -> str:
        empty = '""'
        return ", ".join(f"{n} {settings.get(n, 'unset') or empty}" for n in names)

    logging_queries = [n for n in QUERY_LOG_OPTIONS if settings.get(n) != "no"]
    findings.append(
        Finding("resolver.no_query_log", not logging_queries, shown(*QUERY_LOG_OPTIONS))
    )
    # At verbosity 0 unbound prints only errors, and to stderr (the volatile journal); above it,
    # query details go to syslog or stderr. A logfile is a file on disk whatever the verbosity.
    quiet = settings.get("verbosity") == "0" and settings.get("logfile") == ""
    findings.append(
        Finding("resolver.no_log_output", quiet, shown("verbosity", "logfile", "use-syslog"))
    )
    counting = (
        settings.get("statistics-interval") != "0"
        or settings.get("extended-statistics") != "no"
        or settings.get("control-enable") != "no"
    )
    findings.append(
        Finding(
            "resolver.no_statistics",
            not counting,
            shown("statistics-interval", "extended-statistics", "control-enable"),
        )
    )
    on_disk = "cachedb" in settings.get("module-config", "") or settings.get(
        "auto-trust-anchor-file", ""
    ) not in ("", '""')
    findings.append(
        Finding(
            "resolver.memory_only", not on_disk, shown("module-config", "auto-trust-anchor-file")
        )
    )
    tunnel = tunnel_addresses(outputs.get("tunnel_addresses", ""))
    sockets = listening_addresses(outputs.get("resolver_sockets", ""), settings.get("port", "53"))
    outside = [f"{p} {a}" for p, a in sockets if a.rpartition(":")[0] not in tunnel]
    findings.append(
        Finding(
            "resolver.tunnel_only",
            bool(sockets) and not outside,
            ("listens outside the tunnel: " + ", ".join(outside))
            if outside
            else (
                "listens on " + ", ".join(f"{p} {a}" for p, a in sockets)
                if sockets
                else "no listening socket"
            ),
        )
    )
    return findings


# One DNS query for argv[2] to the resolver at argv[1] (waiting argv[3] seconds, default 5),
# python3 standard library only; prints the answer's response code, or the error's name
# (TimeoutError, OSError...) when there is none. The lab tests resolve canary names with it
# from a client through the tunnel, then `audit --needle NAME` looks for them on the node.
DNS_QUERY_SCRIPT = """\
import os, socket, struct, sys
server, name = sys.argv[1], sys.argv[2]
question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
packet = os.urandom(2) + struct.pack(">HHHHH", 0x0100, 1, 0, 0, 0) + question + b"\\0\\1\\0\\1"
family = socket.AF_INET6 if ":" in server else socket.AF_INET
with socket.socket(family, socket.SOCK_DGRAM) as sock:
    sock.settimeout(float(sys.argv[3]) if len(sys.argv) > 3 else 5)
    try:
        sock.sendto(packet, (server, 53))
        print(sock.recv(4096)[3] & 15)
    except OSError as error:
        print(type(error).__name__)
"""
