"""Judge a node against the no-log promise from what read-only probes printed.

The adapter runs :data:`PROBES` on the node and hands back ``{name: Probe}``; :func:`evaluate`
turns that into one :class:`Check` per promise, each with the evidence it was judged on.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.core.audit_access import ACCESS_PROBES, ControllerKeys, access_checks
from orchestrator.core.audit_resolver import RESOLVER_PROBES, resolver_findings
from orchestrator.core.audit_text import key_values
from orchestrator.core.node_protocol import DIAGNOSTICS_PROGRAM

HISTORY_FILES = ".bash_history .python_history .sh_history .zsh_history .lesshst .viminfo .mysql_history .psql_history"
LOGGING_PACKAGES = (
    "rsyslog",
    "syslog-ng",
    "syslog-ng-core",
    "auditd",
    "systemd-journal-remote",
    "inetutils-syslogd",
    "busybox-syslogd",
    "sysklogd",
)
PERSISTENT_EXCLUDES = ("proc", "sys", "dev", "run", "tmp", "var/tmp")
DIAGNOSTICS_SCRIPT = DIAGNOSTICS_PROGRAM
# An expiry timer fires within a second; a diagnostic still there a minute later outlived it.
DIAGNOSTICS_SLACK_SECONDS = 60

# name -> shell command; each only reads. Exit codes are part of the evidence.
PROBES: dict[str, str] = {
    "virt": "systemd-detect-virt --container || true",
    "journald": "systemd-analyze cat-config systemd/journald.conf",
    "journal_dir": "test -e /var/log/journal && echo present || echo absent",
    "logging_packages": "dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' "
    + " ".join(LOGGING_PACKAGES)
    + " 2>/dev/null | awk '$2 ~ /^ii/ {print $1}'",
    "logging_daemons": "for p in rsyslogd syslog-ng auditd syslogd klogd; do pgrep -x $p >/dev/null && echo $p; done; true",
    "sysctl_live": "for k in kernel.printk kernel.dmesg_restrict net.ipv4.conf.all.log_martians "
    "net.ipv4.conf.default.log_martians net.netfilter.nf_conntrack_acct "
    "net.netfilter.nf_conntrack_timestamp fs.suid_dumpable kernel.core_pattern; "
    'do printf "%s = %s\\n" "$k" "$(sysctl -n $k 2>/dev/null || echo unavailable)"; done',
    "sysctl_files": "cat /etc/sysctl.conf /etc/sysctl.d/*.conf 2>/dev/null | grep -v '^[[:space:]]*[#;]' || true",
    "coredump": "systemd-analyze cat-config systemd/coredump.conf",
    "core_limits": "cat /etc/security/limits.conf /etc/security/limits.d/*.conf 2>/dev/null | grep -v '^#' || true",
    "history_files": f"for d in /root /home/*; do for f in {HISTORY_FILES}; do "
    'test -s "$d/$f" && echo "$d/$f"; done; done; true',
    "history_shell": "bash -lc 'echo \"HISTFILE=${HISTFILE-unset} HISTSIZE=${HISTSIZE-unset}\"'",
    "wireguard_perms": "stat -c '%a %U %n' /etc/wireguard /etc/wireguard/* 2>&1 || true",
    "wireguard_saveconfig": "grep -ilE '^[[:space:]]*SaveConfig[[:space:]]*=[[:space:]]*true' /etc/wireguard/*.conf 2>/dev/null || true",
    "wireguard_units": "systemctl list-units --plain --no-legend --state=active 'wg-quick@*' 2>/dev/null || true",
    "wireguard_debug": "grep -s wireguard /sys/kernel/debug/dynamic_debug/control | grep -v '=_' || true",
    "nft_log": "nft list ruleset 2>&1 | grep -nwE 'log|nflog' || true",
    "sshd": "sshd -T 2>&1 | grep -iE '^(passwordauthentication|kbdinteractiveauthentication|permitrootlogin|loglevel|allowusers|pubkeyauthentication|permitemptypasswords) '",
    "login_records": "for f in /var/log/wtmp /var/log/btmp /var/log/lastlog /var/log/faillog; do test -s $f && echo $f; done; true",
    "var_log": "find /var/log -xdev -type f -size +0 2>/dev/null || true",
    "wireguard_public_keys": "for i in $(wg show interfaces 2>/dev/null); do "
    'echo "$i $(wg show $i public-key)"; done; true',
    "diagnostics": f"{DIAGNOSTICS_SCRIPT} status 2>/dev/null || echo '{{\"active\": false}}'",
    # Who can log in as root, wgcollect and wgpush, and what each login can do (audit_access).
    **ACCESS_PROBES,
    # The resolver's effective settings, its sockets and the tunnel addresses (audit_resolver).
    **RESOLVER_PROBES,
}


@dataclass(frozen=True)
class Probe:
    status: int
    stdout: str


@dataclass(frozen=True)
class Check:
    node: str
    check: str
    passed: bool
    evidence: str


def _size_bytes(text: str) -> int | None:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper()
    if not text:
        return None
    suffix = text[-1] if text[-1] in "KMG" else ""
    number = text[:-1] if suffix else text
    return int(float(number) * units[suffix]) if number.replace(".", "", 1).isdigit() else None


def _lines(probe: Probe | None) -> list[str]:
    return [] if probe is None else [line for line in probe.stdout.splitlines() if line.strip()]


def persistent_grep_command(needles: Iterable[str]) -> str:
    """List ``file NUL needle`` for every needle found in a file on the node's disk.

    Only the root filesystem is searched (``-xdev``): /proc, /sys, /run and tmpfs hold nothing
    that survives a power-off.
    """
    patterns = " ".join(f"-e {shlex.quote(n)}" for n in needles)
    if not patterns:
        return "true"
    prune = " -o ".join(f"-path /{d}" for d in PERSISTENT_EXCLUDES)
    return (
        f"find / -xdev \\( {prune} \\) -prune -o -type f -print0 2>/dev/null"
        f" | xargs -0 -r grep -oHZasF {patterns} 2>/dev/null; true"
    )


def parse_grep_hits(output: str, needles: Iterable[str]) -> dict[str, list[str]]:
    """``{needle: [files]}`` from :func:`persistent_grep_command`'s output."""
    hits: dict[str, list[str]] = {needle: [] for needle in needles}
    for line in output.splitlines():
        path, sep, match = line.partition("\0")
        if sep and match in hits and path not in hits[match]:
            hits[match].append(path)
    return hits


class _Judge:
    def __init__(self, node: str, probes: Mapping[str, Probe]) -> None:
        self.node = node
        self.probes = probes
        self.checks: list[Check] = []
        self.container = bool(
            probes.get("virt") and probes["virt"].stdout.strip() not in ("", "none")
        )

    def add(self, check: str, passed: bool, evidence: str) -> None:
        self.checks.append(Check(self.node, check, passed, " ".join(evidence.split()) or "-"))

    def journald(self) -> None:
        values = key_values(self.probes["journald"].stdout) if "journald" in self.probes else {}
        storage = values.get("Storage", "auto")
        self.add(
            "journald.storage",
            storage in ("volatile", "none"),
            f"Storage={storage}",
        )
        forward = values.get("ForwardToSyslog", "yes")
        self.add(
            "journald.forward_to_syslog",
            forward.lower() in ("no", "false", "0"),
            f"ForwardToSyslog={forward}",
        )
        limit = _size_bytes(values.get("RuntimeMaxUse", ""))
        self.add(
            "journald.runtime_limit",
            limit is not None and limit <= 64 * 1024**2,
            f"RuntimeMaxUse={values.get('RuntimeMaxUse', 'unset')}",
        )
        journal_dir = _lines(self.probes.get("journal_dir"))
        self.add(
            "journald.no_persistent_dir",
            journal_dir == ["absent"],
            f"/var/log/journal {' '.join(journal_dir)}",
        )

    def logging_daemons(self) -> None:
        packages = _lines(self.probes.get("logging_packages"))
        daemons = _lines(self.probes.get("logging_daemons"))
        self.add(
            "logging.no_syslog_or_audit_packages",
            not packages,
            "installed: " + (", ".join(packages) or "none"),
        )
        self.add(
            "logging.no_syslog_or_audit_daemons",
            not daemons,
            "running: " + (", ".join(daemons) or "none"),
        )

    def sysctls(self) -> None:
        live = key_values(self.probes["sysctl_live"].stdout) if "sysctl_live" in self.probes else {}
        configured = (
            key_values(self.probes["sysctl_files"].stdout) if "sysctl_files" in self.probes else {}
        )
        wanted = {
            "kernel.printk": lambda v: v.split()[:1] != [] and int(v.split()[0]) <= 3,
            "kernel.dmesg_restrict": lambda v: v == "1",
            "net.ipv4.conf.all.log_martians": lambda v: v == "0",
            "net.ipv4.conf.default.log_martians": lambda v: v == "0",
            "net.netfilter.nf_conntrack_acct": lambda v: v == "0",
            "net.netfilter.nf_conntrack_timestamp": lambda v: v == "0",
            "fs.suid_dumpable": lambda v: v == "0",
        }
        for key, good in wanted.items():
            now = live.get(key, "unavailable")
            conf = configured.get(key, "unset")
            conf_ok = conf != "unset" and _safe(good, conf)
            if now == "unavailable":
                # No conntrack module loaded means nothing is being accounted at all.
                passed, note = conf_ok, "not present in this kernel"
            elif _safe(good, now):
                passed, note = conf_ok, f"live {now}"
            elif self.container and key.startswith(("kernel.", "fs.")):
                passed, note = conf_ok, f"live {now} belongs to the container host (read-only here)"
            else:
                passed, note = False, f"live {now}"
            self.add(f"sysctl.{key}", passed, f"configured {conf}; {note}")

    def coredumps(self) -> None:
        values = key_values(self.probes["coredump"].stdout) if "coredump" in self.probes else {}
        storage = values.get("Storage", "external")
        self.add(
            "coredump.storage",
            storage == "none",
            f"Storage={storage} ProcessSizeMax={values.get('ProcessSizeMax', 'unset')}",
        )
        limits = [line.split() for line in _lines(self.probes.get("core_limits"))]
        hard_zero = any(
            len(p) >= 4 and p[1] == "hard" and p[2] == "core" and p[3] == "0" for p in limits
        )
        self.add(
            "coredump.hard_limit_zero",
            hard_zero,
            "limits.d: * hard core 0" if hard_zero else "no hard core 0 limit",
        )
        pattern = (
            key_values(self.probes["sysctl_files"].stdout).get("kernel.core_pattern", "unset")
            if "sysctl_files" in self.probes
            else "unset"
        )
        self.add(
            "coredump.core_pattern",
            pattern.startswith("|/bin/false") or pattern == "|/bin/true",
            f"configured kernel.core_pattern={pattern}",
        )

    def history(self) -> None:
        files = _lines(self.probes.get("history_files"))
        self.add("history.no_files", not files, "non-empty: " + (", ".join(files) or "none"))
        shell = self.probes.get("history_shell")
        text = shell.stdout.strip() if shell else ""
        values = dict(part.split("=", 1) for part in text.split() if "=" in part)
        off = values.get("HISTFILE") in ("/dev/null", "unset", "") or values.get("HISTSIZE") == "0"
        self.add(
            "history.login_shell_off", off and values.get("HISTSIZE") == "0", text or "no answer"
        )

    def wireguard(self) -> None:
        perms = _lines(self.probes.get("wireguard_perms"))
        bad = []
        for line in perms:
            parts = line.split(maxsplit=2)
            if len(parts) != 3:
                bad.append(line)
                continue
            mode, owner, path = parts
            limit = 0o700 if path == "/etc/wireguard" else 0o600
            if owner != "root" or int(mode, 8) & ~limit:
                bad.append(line)
        self.add(
            "wireguard.file_modes",
            bool(perms) and not bad,
            "; ".join(bad or perms) or "no /etc/wireguard",
        )
        saving = _lines(self.probes.get("wireguard_saveconfig"))
        self.add(
            "wireguard.no_saveconfig",
            not saving,
            "SaveConfig=true in: " + (", ".join(saving) or "none"),
        )
        units = _lines(self.probes.get("wireguard_units"))
        self.add(
            "wireguard.interface_active",
            bool(units),
            "; ".join(u.split()[0] for u in units) or "no active wg-quick@ unit",
        )
        debug = _lines(self.probes.get("wireguard_debug"))
        diagnosing = self.diagnostics_state().get("kernel_debug") is True and self.diagnosing()
        self.add(
            "wireguard.no_dynamic_debug",
            not debug or diagnosing,
            ("on, for an active diagnostic: " if debug and diagnosing else "")
            + ("; ".join(debug) or "off (or no debugfs)"),
        )

    def diagnostics_state(self) -> dict[str, Any]:
        probe = self.probes.get("diagnostics")
        try:
            state = json.loads(probe.stdout.strip().splitlines()[-1]) if probe else {}
        except (ValueError, IndexError):
            return {"unreadable": probe.stdout[:80] if probe else ""}
        return state if isinstance(state, dict) else {"unreadable": str(state)[:80]}

    def diagnosing(self) -> bool:
        """An active diagnostic still within its time, with its expiry timer."""
        state = self.diagnostics_state()
        left = state.get("seconds_left")
        return (
            state.get("active") is True
            and state.get("timer") is True
            and isinstance(left, int)
            and left > -DIAGNOSTICS_SLACK_SECONDS
        )

    def diagnostics(self) -> None:
        state = self.diagnostics_state()
        if "unreadable" in state:
            self.add("diagnostics.expiry", False, f"status unreadable: {state['unreadable']}")
        elif not state.get("active"):
            self.add("diagnostics.expiry", True, "no diagnostic active")
        elif self.diagnosing():
            peer = f" for peer {state['peer'][:8]}…" if state.get("peer") else ""
            self.add(
                "diagnostics.expiry",
                True,
                f"active on {state.get('interface')}{peer}, ends by itself in "
                f"{max(0, state['seconds_left'])} s",
            )
        else:
            why = (
                "its expiry timer is gone"
                if not state.get("timer")
                else f"it outlived its expiry by {-state.get('seconds_left', 0)} s"
            )
            self.add("diagnostics.expiry", False, f"a diagnostic is still active: {why}")

    def firewall(self) -> None:
        logs = _lines(self.probes.get("nft_log"))
        self.add("nftables.no_log_rules", not logs, "; ".join(logs) or "no log/nflog statement")

    def sshd(self) -> None:
        values = {}
        for line in _lines(self.probes.get("sshd")):
            key, _, value = line.partition(" ")
            values[key.lower()] = value.strip()
        expected = {
            "passwordauthentication": {"no"},
            "kbdinteractiveauthentication": {"no"},
            "permitemptypasswords": {"no"},
            "pubkeyauthentication": {"yes"},
            "permitrootlogin": {"without-password", "prohibit-password", "no"},
            # `sshd -T` prints QUIET as SILENT (OpenSSH 9.2).
            "loglevel": {"QUIET", "SILENT", "FATAL", "ERROR"},
        }
        for key, allowed in expected.items():
            value = values.get(key, "unset")
            self.add(f"sshd.{key}", value in allowed, f"{key} {value}")
        allow = values.get("allowusers", "")
        self.add("sshd.allowusers", bool(allow), f"allowusers {allow or 'unset (everyone)'}")

    def login_records(self) -> None:
        records = _lines(self.probes.get("login_records"))
        self.add("login_records.none", not records, "non-empty: " + (", ".join(records) or "none"))
        logs = _lines(self.probes.get("var_log"))
        self.add("var_log.no_files", not logs, "non-empty: " + (", ".join(logs[:10]) or "none"))

    def resolver(self) -> None:
        outputs = {name: probe.stdout for name, probe in self.probes.items()}
        for finding in resolver_findings(outputs):
            self.add(finding.check, finding.passed, finding.evidence)

    def access(self, keys: ControllerKeys | None) -> None:
        outputs = {name: probe.stdout for name, probe in self.probes.items()}
        for finding in access_checks(outputs, keys):
            self.add(finding.check, finding.passed, finding.evidence)


def _safe(test: object, value: str) -> bool:
    try:
        return bool(test(value))  # type: ignore[operator]
    except (ValueError, IndexError):
        return False


def evaluate(
    node: str, probes: Mapping[str, Probe], controller_keys: ControllerKeys | None = None
) -> list[Check]:
    """One check per promise, judged only on the probes' output; ``controller_keys`` are the
    public keys the login accounts must hold (without them those checks fail).

    Most promises give one row; the access checks give one row per finding.
    """
    judge = _Judge(node, probes)
    judge.journald()
    judge.logging_daemons()
    judge.sysctls()
    judge.coredumps()
    judge.history()
    judge.wireguard()
    judge.firewall()
    judge.sshd()
    judge.login_records()
    judge.resolver()
    judge.access(controller_keys)
    judge.diagnostics()
    return judge.checks


def canary_checks(node: str, found: Mapping[str, list[str]]) -> list[Check]:
    """``found`` maps each canary's purpose to the files on the node's disk that contain it."""
    return [
        Check(
            node,
            f"canary.{purpose}",
            not files,
            "found in: " + ", ".join(files) if files else "not found on disk",
        )
        for purpose, files in found.items()
    ]
