"""The audit's resolver checks, judged on probe output as a node prints it (no lab)."""

from __future__ import annotations

import pytest

from orchestrator.core.audit import PROBES, Probe, evaluate
from orchestrator.core.audit_resolver import resolver_findings

# The settings of a resolver that logs and counts nothing, as unbound-control prints them and
# as the role's unbound.conf sets them (tests/unit/test_templates.py checks it against these).
QUIET_LOGGING = {
    "verbosity": "0",
    "use-syslog": "no",
    "log-queries": "no",
    "log-replies": "no",
    "log-servfail": "no",
    "log-local-actions": "no",
    "statistics-interval": "0",
    "extended-statistics": "no",
}
QUIET = {
    **QUIET_LOGGING,
    "logfile": "",
    "control-enable": "no",
    "module-config": "validator iterator",
    "auto-trust-anchor-file": "",
    "port": "53",
    "interface": "198.19.1.1",
}
TUNNEL = (
    "5: wg0    inet 198.19.1.1/24 scope global wg0\\       valid_lft forever\n"
    "7: wg0n    inet 198.19.1.1/32 scope global wg0n\\       valid_lft forever\n"
)
SOCKETS = (
    'udp UNCONN 0 0 198.19.1.1:53 0.0.0.0:* users:(("unbound",pid=80,fd=3))\n'
    'tcp LISTEN 0 256 198.19.1.1:53 0.0.0.0:* users:(("unbound",pid=80,fd=4))\n'
)


def outputs(sockets: str = SOCKETS, **settings: str) -> dict[str, str]:
    merged = {**QUIET, **settings}
    return {
        "resolver_active": "active\n",
        "resolver_settings": "".join(f"{k}\t{v}\n" for k, v in merged.items()),
        "resolver_sockets": sockets,
        "tunnel_addresses": TUNNEL,
    }


def verdicts(out: dict[str, str]) -> dict[str, bool]:
    return {f.check: f.passed for f in resolver_findings(out)}


def test_a_quiet_resolver_on_the_tunnel_passes_every_check() -> None:
    assert verdicts(outputs()) == {
        "resolver.active": True,
        "resolver.no_query_log": True,
        "resolver.no_log_output": True,
        "resolver.no_statistics": True,
        "resolver.memory_only": True,
        "resolver.tunnel_only": True,
    }


@pytest.mark.parametrize(
    ("setting", "value", "check"),
    [
        ("log-queries", "yes", "resolver.no_query_log"),
        ("log-replies", "yes", "resolver.no_query_log"),
        ("log-servfail", "yes", "resolver.no_query_log"),
        ("log-local-actions", "yes", "resolver.no_query_log"),
        ("logfile", "/var/log/unbound.log", "resolver.no_log_output"),
        ("verbosity", "2", "resolver.no_log_output"),
        ("statistics-interval", "3600", "resolver.no_statistics"),
        ("extended-statistics", "yes", "resolver.no_statistics"),
        ("control-enable", "yes", "resolver.no_statistics"),
        ("module-config", "validator cachedb iterator", "resolver.memory_only"),
        ("auto-trust-anchor-file", "/var/lib/unbound/root.key", "resolver.memory_only"),
    ],
)
def test_each_way_of_logging_or_keeping_fails_its_check(
    setting: str, value: str, check: str
) -> None:
    found = verdicts(outputs(**{setting: value}))
    assert [name for name, passed in found.items() if not passed] == [check]


@pytest.mark.parametrize(
    "socket",
    [
        'udp UNCONN 0 0 0.0.0.0:53 0.0.0.0:* users:(("unbound",pid=80,fd=3))',
        'udp UNCONN 0 0 198.18.0.11:53 0.0.0.0:* users:(("unbound",pid=80,fd=3))',
        'tcp LISTEN 0 256 [::]:53 [::]:* users:(("unbound",pid=80,fd=4))',
        'tcp LISTEN 0 256 127.0.0.1:8953 0.0.0.0:* users:(("unbound",pid=80,fd=5))',
    ],
)
def test_a_socket_outside_the_tunnel_fails(socket: str) -> None:
    assert verdicts(outputs(SOCKETS + socket + "\n"))["resolver.tunnel_only"] is False


def test_outgoing_udp_sockets_are_not_listeners() -> None:
    outgoing = 'udp UNCONN 0 0 0.0.0.0:41234 0.0.0.0:* users:(("unbound",pid=80,fd=9))\n'
    assert verdicts(outputs(SOCKETS + outgoing))["resolver.tunnel_only"] is True


def test_no_resolver_fails() -> None:
    found = verdicts({"resolver_active": "inactive\n", "resolver_settings": ""})
    assert found == {"resolver.active": False, "resolver.settings": False}
    assert verdicts(outputs(""))["resolver.tunnel_only"] is False


def test_the_audit_runs_the_resolver_probes_and_checks() -> None:
    assert {"resolver_active", "resolver_settings", "resolver_sockets"} <= set(PROBES)
    checks = evaluate("node1", {k: Probe(0, v) for k, v in outputs().items()})
    assert {c.check for c in checks} >= {"resolver.no_query_log", "resolver.tunnel_only"}
