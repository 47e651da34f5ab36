"""The audit's judgement on probe output of a compliant node, and of each way a node drifts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.core.audit import (
    PROBES,
    Probe,
    canary_checks,
    evaluate,
    parse_grep_hits,
    persistent_grep_command,
)
from orchestrator.core.audit_text import key_values
from orchestrator.service.audit import _probe_script, parse_probe_output
from tests.unit.access_samples import COMPLIANT_ACCESS, KEYS
from tests.unit.test_audit_resolver import outputs as resolver_outputs

COMPLIANT = {
    "virt": "systemd-nspawn",
    "journald": "# /etc/systemd/journald.conf\n[Journal]\n#Storage=auto\n\n# /etc/systemd/journald.conf.d/00-nolog.conf\n[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\nForwardToSyslog=no\n",
    "journal_dir": "absent",
    "logging_packages": "",
    "logging_daemons": "",
    "sysctl_live": "kernel.printk = 4 4 1 7\nkernel.dmesg_restrict = 1\nnet.ipv4.conf.all.log_martians = 0\nnet.ipv4.conf.default.log_martians = 0\nnet.netfilter.nf_conntrack_acct = unavailable\nnet.netfilter.nf_conntrack_timestamp = unavailable\nfs.suid_dumpable = 0\nkernel.core_pattern = core\n",
    "sysctl_files": "kernel.printk = 3 3 3 3\nkernel.dmesg_restrict = 1\nnet.ipv4.conf.all.log_martians = 0\nnet.ipv4.conf.default.log_martians = 0\nnet.netfilter.nf_conntrack_acct = 0\nnet.netfilter.nf_conntrack_timestamp = 0\nfs.suid_dumpable = 0\nkernel.core_pattern = |/bin/false\n",
    "coredump": "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
    "core_limits": "* hard core 0\n",
    "history_files": "",
    "history_shell": "HISTFILE=unset HISTSIZE=0",
    "wireguard_perms": "700 root /etc/wireguard\n600 root /etc/wireguard/wg0.conf\n600 root /etc/wireguard/wg0.key\n",
    "wireguard_saveconfig": "",
    "wireguard_units": "wg-quick@wg0.service loaded active exited WireGuard via wg-quick(8) for wg0\n",
    "wireguard_debug": "",
    "nft_log": "",
    "sshd": "passwordauthentication no\nkbdinteractiveauthentication no\npermitemptypasswords no\npubkeyauthentication yes\npermitrootlogin without-password\nloglevel QUIET\nallowusers root wgcollect\n",
    "login_records": "",
    "var_log": "",
    "wireguard_public_keys": "wg0 " + "A" * 43 + "=\n",
    "diagnostics": '{"active": false}\n',
    **COMPLIANT_ACCESS,
    **resolver_outputs(),
}


def probes(**changes: str) -> dict[str, Probe]:
    return {name: Probe(0, text) for name, text in {**COMPLIANT, **changes}.items()}


def failing(**changes: str) -> dict[str, str]:
    return {c.check: c.evidence for c in evaluate("node1", probes(**changes), KEYS) if not c.passed}


def test_a_compliant_node_passes_every_check() -> None:
    checks = evaluate("node1", probes(), KEYS)
    assert {c.node for c in checks} == {"node1"}
    assert [c for c in checks if not c.passed] == []
    assert len(checks) >= 25


def test_kernel_values_of_a_container_host_are_noted_not_hidden() -> None:
    check = next(c for c in evaluate("node1", probes()) if c.check == "sysctl.kernel.printk")
    assert check.passed
    assert (
        check.evidence
        == "configured 3 3 3 3; live 4 4 1 7 belongs to the container host (read-only here)"
    )


@pytest.mark.parametrize(
    ("probe", "text", "check", "evidence"),
    [
        (
            "journald",
            "[Journal]\nStorage=volatile\n# later drop-in\nStorage=persistent\n",
            "journald.storage",
            "Storage=persistent",
        ),
        (
            "journald",
            "[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\n",
            "journald.forward_to_syslog",
            "ForwardToSyslog=yes",
        ),
        ("journal_dir", "present", "journald.no_persistent_dir", "/var/log/journal present"),
        (
            "logging_packages",
            "rsyslog\n",
            "logging.no_syslog_or_audit_packages",
            "installed: rsyslog",
        ),
        ("logging_daemons", "auditd\n", "logging.no_syslog_or_audit_daemons", "running: auditd"),
        (
            "sysctl_live",
            COMPLIANT["sysctl_live"].replace("all.log_martians = 0", "all.log_martians = 1"),
            "sysctl.net.ipv4.conf.all.log_martians",
            "configured 0; live 1",
        ),
        ("sysctl_files", "", "sysctl.kernel.dmesg_restrict", "configured unset; live 1"),
        (
            "coredump",
            "[Coredump]\nStorage=external\n",
            "coredump.storage",
            "Storage=external ProcessSizeMax=unset",
        ),
        (
            "history_files",
            "/root/.bash_history\n",
            "history.no_files",
            "non-empty: /root/.bash_history",
        ),
        (
            "history_shell",
            "HISTFILE=/root/.bash_history HISTSIZE=500",
            "history.login_shell_off",
            "HISTFILE=/root/.bash_history HISTSIZE=500",
        ),
        (
            "wireguard_perms",
            "755 root /etc/wireguard\n600 root /etc/wireguard/wg0.conf\n",
            "wireguard.file_modes",
            "755 root /etc/wireguard",
        ),
        (
            "wireguard_saveconfig",
            "/etc/wireguard/wg0.conf\n",
            "wireguard.no_saveconfig",
            "SaveConfig=true in: /etc/wireguard/wg0.conf",
        ),
        ("wireguard_units", "", "wireguard.interface_active", "no active wg-quick@ unit"),
        (
            "nft_log",
            "12: tcp dport 22 log prefix ssh\n",
            "nftables.no_log_rules",
            "12: tcp dport 22 log prefix ssh",
        ),
        (
            "sshd",
            COMPLIANT["sshd"].replace("loglevel QUIET", "loglevel INFO"),
            "sshd.loglevel",
            "loglevel INFO",
        ),
        (
            "sshd",
            COMPLIANT["sshd"].replace("passwordauthentication no", "passwordauthentication yes"),
            "sshd.passwordauthentication",
            "passwordauthentication yes",
        ),
        ("login_records", "/var/log/btmp\n", "login_records.none", "non-empty: /var/log/btmp"),
        (
            "access_wgpush",
            COMPLIANT_ACCESS["access_wgpush"] + "rc\t/var/lib/wgpush/.ssh/rc\n",
            "access.wgpush.rc_files",
            "wgpush: /var/lib/wgpush/.ssh/rc exists",
        ),
        (
            "diagnostics",
            '{"active": true, "interface": "wg0", "seconds_left": -120, "timer": true}\n',
            "diagnostics.expiry",
            "a diagnostic is still active: it outlived its expiry by 120 s",
        ),
        (
            "diagnostics",
            '{"active": true, "interface": "wg0", "seconds_left": 300, "timer": false}\n',
            "diagnostics.expiry",
            "a diagnostic is still active: its expiry timer is gone",
        ),
        (
            "wireguard_debug",
            "drivers/net/wireguard/send.c:123 [wireguard]wg_packet_send =p\n",
            "wireguard.no_dynamic_debug",
            "drivers/net/wireguard/send.c:123 [wireguard]wg_packet_send =p",
        ),
    ],
)
def test_each_drift_fails_its_check_with_evidence(
    probe: str, text: str, check: str, evidence: str
) -> None:
    failures = failing(**{probe: text})
    assert check in failures
    assert failures[check] == evidence


def test_last_assignment_wins_like_systemd() -> None:
    assert (
        key_values("[Journal]\nStorage=auto\n[Journal]\n Storage = volatile \n")["Storage"]
        == "volatile"
    )


def test_canaries_report_the_files_they_were_found_in() -> None:
    checks = canary_checks(
        "node1", {"journal": ["/var/log/journal/x/system.journal"], "syslog": []}
    )
    assert [(c.check, c.passed, c.evidence) for c in checks] == [
        ("canary.journal", False, "found in: /var/log/journal/x/system.journal"),
        ("canary.syslog", True, "not found on disk"),
    ]


def test_probe_script_round_trips_through_a_real_shell() -> None:
    script = "\n".join(
        line for line in _probe_script().splitlines() if "'@@wgfleet-probe journal_dir'" in line
    )
    output = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    parsed = parse_probe_output(output)
    assert list(parsed) == ["journal_dir"]
    assert parsed["journal_dir"].stdout in ("present", "absent")
    assert set(parse_probe_output(output + output)) == {"journal_dir"}
    assert len(PROBES) == len(COMPLIANT)


def test_disk_search_finds_each_needle_and_skips_proc(tmp_path: Path) -> None:
    needles = ["wgfleet-canary-a1", "198.18.8.1"]
    command = persistent_grep_command(needles)
    assert "-xdev" in command and "-path /proc" in command and "-path /run" in command
    (tmp_path / "log").write_text("x wgfleet-canary-a1 y\n")
    (tmp_path / "other").write_text("endpoint 198.18.8.1:51820\n")
    local = command.replace("find / ", f"find {tmp_path} ")
    output = subprocess.run(["sh", "-c", local], capture_output=True, text=True, check=True).stdout
    hits = parse_grep_hits(output, needles)
    assert hits == {
        "wgfleet-canary-a1": [str(tmp_path / "log")],
        "198.18.8.1": [str(tmp_path / "other")],
    }


def test_an_active_diagnostic_is_reported_and_may_hold_kernel_debug_on() -> None:
    active = (
        '{"active": true, "interface": "wg0", "peer": "AAAAAAAAAAAA=", "seconds_left": 900, '
        '"timer": true, "kernel_debug": true}\n'
    )
    debug = "drivers/net/wireguard/send.c:123 [wireguard]wg_packet_send =p\n"
    checks = {
        c.check: c for c in evaluate("node1", probes(diagnostics=active, wireguard_debug=debug))
    }
    assert checks["diagnostics.expiry"].passed
    assert checks["diagnostics.expiry"].evidence.startswith("active on wg0 for peer AAAAAAAA")
    assert checks["wireguard.no_dynamic_debug"].passed
    assert checks["wireguard.no_dynamic_debug"].evidence.startswith("on, for an active diagnostic")
