"""Probe output of the access audit, recorded on a deployed lab node (keys replaced by these
fixed test keys), and the controller keys that node was deployed with."""

from __future__ import annotations

from orchestrator.core.audit_access import ControllerKeys, ExpectedKeys

DEPLOY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRMu5oXt88gfEodvvyCHoUazhLxSa7geGwObrUZ6W4+ wgfleet-deploy"
COLLECTOR_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPz0xWAJvQQwvcraVEIDmzO3QSBlt+0FabU2excRuAG6 wgfleet-collector"
PUSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEQoVCxUvIXXzBR3Tnmm47GngWvOz+KhPltwv3aT82b9 wgfleet-push"
)
INTRUDER_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA4OvyYLfcpwB1gRYd/HA0PiSqUbZOzTTgSBD0Hv1ury intruder"
)
NEXT_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP+pciaOuOlkRs7/izgS2lzLYqf5yWLPpnb9WX4Bffqf wgfleet-next"
)

KEYS = ControllerKeys(
    {
        "deploy": ExpectedKeys.from_lines([DEPLOY_KEY]),
        "collector": ExpectedKeys.from_lines([COLLECTOR_KEY]),
        "push": ExpectedKeys.from_lines([PUSH_KEY]),
    }
)

COUNTERS_LINE = f'restrict,command="sudo -n /usr/local/sbin/wgfleet-counters" {COLLECTOR_KEY}'
PEERS_LINE = f'restrict,command="sudo -n /usr/local/sbin/wgfleet-peers" {PUSH_KEY}'


def _sshd(forcecommand: str, permittty: str) -> str:
    return (
        "sshd\tx11forwarding no\n"
        f"sshd\tpermittty {permittty}\n"
        "sshd\tpermituserrc no\n"
        "sshd\tallowtcpforwarding no\n"
        "sshd\tallowagentforwarding no\n"
        "sshd\tdisableforwarding yes\n"
        "sshd\tallowstreamlocalforwarding no\n"
        f"sshd\tforcecommand {forcecommand}\n"
        "sshd\ttrustedusercakeys none\n"
        "sshd\tauthorizedkeyscommand none\n"
        "sshd\tauthorizedprincipalscommand none\n"
        "sshd\tauthorizedkeysfile .ssh/authorized_keys\n"
        "sshd\tpermittunnel no\n"
        "sshd\tpermituserenvironment no\n"
    )


ROOT_ANSWER = (
    "passwd\t/root\t/bin/bash\n"
    "password\tlocked\n"
    "groups\troot\troot\n" + _sshd("none", "yes") + "dir\troot\t700\t/root\n"
    "dir\troot\t700\t/root/.ssh\n"
    "consults\t/root/.ssh/authorized_keys\n"
    "keyfile\t/root/.ssh/authorized_keys\troot\t600\n"
    f"key\t/root/.ssh/authorized_keys\t1\t{DEPLOY_KEY}\n"
    "rc\t/root/.profile\n"
    "rc\t/root/.bashrc\n"
)

COLLECTOR_ANSWER = (
    "passwd\t/var/lib/wgcollect\t/bin/sh\n"
    "password\tlocked\n"
    "groups\twgcollect\twgcollect\n"
    + _sshd("sudo -n /usr/local/sbin/wgfleet-counters", "no")
    + "dir\troot\t755\t/var/lib/wgcollect\n"
    "dir\troot\t755\t/var/lib/wgcollect/.ssh\n"
    "consults\t/var/lib/wgcollect/.ssh/authorized_keys\n"
    "keyfile\t/var/lib/wgcollect/.ssh/authorized_keys\troot\t644\n"
    f"key\t/var/lib/wgcollect/.ssh/authorized_keys\t1\t{COUNTERS_LINE}\n"
)

PUSH_ANSWER = (
    "passwd\t/var/lib/wgpush\t/bin/sh\n"
    "password\tlocked\n"
    "groups\twgpush\twgpush\n"
    + _sshd("sudo -n /usr/local/sbin/wgfleet-peers", "no")
    + "dir\troot\t755\t/var/lib/wgpush\n"
    "dir\troot\t755\t/var/lib/wgpush/.ssh\n"
    "consults\t/var/lib/wgpush/.ssh/authorized_keys\n"
    "keyfile\t/var/lib/wgpush/.ssh/authorized_keys\troot\t644\n"
    f"key\t/var/lib/wgpush/.ssh/authorized_keys\t1\t{PEERS_LINE}\n"
)

SUDOERS_PARSED = (
    "visudo\t0\n"
    "parsed\t/etc/sudoers: parsed OK\n"
    "parsed\t/etc/sudoers.d/README: parsed OK\n"
    "parsed\t/etc/sudoers.d/wgfleet-counters: parsed OK\n"
    "parsed\t/etc/sudoers.d/wgfleet-peers: parsed OK\n"
)
COUNTERS_RULE = 'wgcollect ALL = (root) NOPASSWD: /usr/local/sbin/wgfleet-counters ""'
PEERS_RULE = 'wgpush ALL = (root) NOPASSWD: /usr/local/sbin/wgfleet-peers ""'
SUDO_COLLECTOR_ANSWER = (
    SUDOERS_PARSED
    + f"rule\t{COUNTERS_RULE}\n"
    + f"in\t/etc/sudoers.d/wgfleet-counters\t{COUNTERS_RULE}\n"
)
SUDO_PUSH_ANSWER = (
    SUDOERS_PARSED + f"rule\t{PEERS_RULE}\n" + f"in\t/etc/sudoers.d/wgfleet-peers\t{PEERS_RULE}\n"
)

COMPLIANT_ACCESS = {
    "access_root": ROOT_ANSWER,
    "access_wgcollect": COLLECTOR_ANSWER,
    "access_wgpush": PUSH_ANSWER,
    "sudo_wgcollect": SUDO_COLLECTOR_ANSWER,
    "sudo_wgpush": SUDO_PUSH_ANSWER,
}
