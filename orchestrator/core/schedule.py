"""Unattended runs as a scheduler sees them: a crontab, or systemd timers, for sync and audit;
and a systemd service for the HTTP API (`wgfleet serve`).

Overlap is safe either way: `sync` takes the fleet lock and a second one exits 3 at once
(`SuccessExitStatus=3` tells systemd that is not a failure; systemd also never starts a
oneshot service that is still running). Both stay quiet on success, so cron mails only
problems.
"""

from __future__ import annotations

from orchestrator.core.keys import parse_duration

AUDIT_HOUR = 4  # a quiet hour: the audit reads every node, it changes nothing


def cron_step(interval: str) -> str:
    """The crontab time fields for "every ``interval``" (whole minutes or hours)."""
    seconds = parse_duration(interval)
    minutes = max(1, seconds // 60)
    if minutes < 60:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours = minutes // 60
    return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"


def crontab(command: str, sync_interval: str) -> str:
    return (
        "# /etc/cron.d/wgfleet: sync counters and enforce quotas; audit every node daily.\n"
        "# A sync still running makes the next one exit 3 (another run holds the lock).\n"
        f"{cron_step(sync_interval)} root {command} sync --quiet\n"
        f"17 {AUDIT_HOUR} * * * root {command} audit --quiet\n"
    )


def systemd_units(command: str, sync_interval: str) -> dict[str, str]:
    """Unit file name -> contents, for /etc/systemd/system."""
    seconds = parse_duration(sync_interval)

    def service(what: str, description: str) -> str:
        return (
            "[Unit]\n"
            f"Description=wgfleet {description}\n"
            "Wants=network-online.target\n"
            "After=network-online.target\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"ExecStart={command} {what} --quiet\n"
            "# 3: another wgfleet run holds the fleet lock; this run is skipped, not failed.\n"
            "SuccessExitStatus=3\n"
            "UMask=0077\n"
            "PrivateTmp=yes\n"
            "NoNewPrivileges=yes\n"
        )

    return {
        "wgfleet-sync.service": service("sync", "counter sync and quota enforcement"),
        "wgfleet-sync.timer": (
            "[Unit]\n"
            f"Description=Run wgfleet sync every {sync_interval}\n\n"
            "[Timer]\n"
            "OnBootSec=1min\n"
            f"OnUnitActiveSec={seconds}s\n"
            "AccuracySec=1s\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        ),
        "wgfleet-audit.service": service("audit", "compliance audit of every node"),
        "wgfleet-audit.timer": (
            "[Unit]\n"
            "Description=Run wgfleet audit once a day\n\n"
            "[Timer]\n"
            f"OnCalendar=*-*-* 0{AUDIT_HOUR}:17:00\n"
            "RandomizedDelaySec=15min\n"
            "Persistent=true\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        ),
    }


def serve_unit(command: str, listen: str) -> str:
    """A long-running service for `wgfleet serve` (the HTTP API), restarted if it dies."""
    return (
        "[Unit]\n"
        "Description=wgfleet serve: the provider's HTTP API (no access log)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n\n"
        "[Service]\n"
        "Type=exec\n"
        f"ExecStart={command} serve --listen {listen}\n"
        "Restart=on-failure\n"
        "RestartSec=5s\n"
        "UMask=0077\n"
        "PrivateTmp=yes\n"
        "NoNewPrivileges=yes\n"
        "# stdout carries one line at start; stderr only errors. Nothing names a client.\n"
        "StandardOutput=journal\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
