"""The collector and push keys in an attacker's hands, and the audit of what they can reach.

With the controller's real collector and push private keys, every SSH request beyond the forced
command is tried against a deployed lab node: a terminal, local and remote TCP forwarding, a
Unix socket forward, agent and X11 forwarding, environment variables, other commands, a shell,
a subsystem. Each is refused or gets only the forced command's own answer (the collector's
never holds the live peer's endpoint), and the node is byte-identical afterwards. Then root
widens both accounts the ways an intruder would (an extra key, a key file sshd is pointed to,
a sudo rule through an alias and a group, a group, a shell, a password, an rc file, a key for
root): the audit fails exactly those checks, naming each, and passes again once restored.

Named to run after test_node_deploy.py (it needs deployed nodes, the session's one deploy).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.message import Message

from orchestrator.adapters import keyfiles
from orchestrator.core.inventory import public_key_fingerprint
from orchestrator.core.lab_layout import LabNode
from tests.conftest import Lab
from tests.integration.fleet_lab import (
    hand_made_config,
    ping_within,
    pinned_ssh_options,
    root,
    tunnel,
    wg_keypair,
    wgfleet,
)

pytestmark = pytest.mark.lab

ACCOUNTS = {"collector": "wgcollect", "push": "wgpush"}
WG_KEY = r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]="
COUNTER_LINE = re.compile(rf"^{WG_KEY}\t[0-9]+\t[0-9]+$")
EPOCH_LINE = re.compile(r"^epoch [0-9A-Za-z-]+$")
# Everything an attacker would want to run instead of the forced command.
OTHER_COMMANDS = (
    "cat /etc/shadow",
    "wg show wg0 dump",
    "wg show all endpoints",
    "wg show wg0 latest-handshakes",
    "sudo -l",
    "sudo -n /usr/local/sbin/wgfleet-counters dump",
    "sudo -n /usr/local/sbin/wgfleet-peers --watch wg0",
    "sh -i",
    "/bin/bash -c id",
    "cat ~/.ssh/authorized_keys; echo intruder >> ~/.ssh/authorized_keys",
)
# What the node must look like after any attempt: peers (live and persisted), addresses,
# routes, firewall, accounts, keys and sudo rules.
NODE_STATE = (
    "wg show all allowed-ips; wg show all listen-port; wg show all public-key;"
    " ip -o addr; ip route; ip -6 route; nft list ruleset | sha256sum;"
    " sha256sum /etc/wireguard/* /etc/passwd /etc/shadow /etc/group /etc/gshadow"
    " /etc/sudoers /etc/sudoers.d/* /root/.ssh/authorized_keys"
    " /var/lib/wgcollect/.ssh/authorized_keys /var/lib/wgpush/.ssh/authorized_keys 2>&1;"
    " ls -la /var/lib/wgcollect /var/lib/wgcollect/.ssh /var/lib/wgpush /var/lib/wgpush/.ssh"
)


def node_state(lab: Lab, layout, index: int) -> str:
    return root(lab, layout, index, ["sh", "-c", NODE_STATE])


def key_file(lab: Lab, purpose: str) -> Path:
    return lab.settings.ssh.collector_key if purpose == "collector" else lab.settings.ssh.push_key


def login(lab: Lab, node: LabNode, user: str, key: Path) -> paramiko.SSHClient:
    """An SSH session as an attacker holding ``key``: pinned host key, nothing else offered."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        str(node.underlay),
        username=user,
        key_filename=str(key),
        allow_agent=False,
        look_for_keys=False,
        timeout=10,
    )
    return client


def channel_request(channel: paramiko.Channel, kind: str, *fields: str) -> None:
    """A session request that asks for an answer (paramiko sends agent and env requests
    without one, so a refusal would go unseen); raises SSHException when sshd refuses it."""
    message = Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string(kind)
    message.add_boolean(True)
    for value in fields:
        message.add_string(value)
    channel._event_pending()
    channel.transport._send_user_message(message)  # type: ignore[union-attr]
    channel._wait_for_event()


def answer(channel: paramiko.Channel) -> tuple[int, str, str]:
    channel.shutdown_write()
    stdout = channel.makefile("rb").read().decode(errors="replace")
    stderr = channel.makefile_stderr("rb").read().decode(errors="replace")
    return channel.recv_exit_status(), stdout, stderr


@dataclass(frozen=True)
class LivePeer:
    public_key: str
    client_underlay: str


@pytest.fixture(scope="module")
def live_peer(lab: Lab, layout, deployed: None) -> Iterator[LivePeer]:
    """A peer with a session on node1 (an endpoint and a handshake on the node), added by root
    outside the store and removed again, so the collector's answer has something to leak."""
    node, client = layout.nodes[0], layout.clients[1]
    private, public = wg_keypair()
    address = node.tunnel_network[200]
    root(lab, layout, 0, ["wg", "set", "wg0", "peer", public, "allowed-ips", f"{address}/32"])
    try:
        node_key = root(lab, layout, 0, ["wg", "show", "wg0", "public-key"]).strip()
        port = root(lab, layout, 0, ["wg", "show", "wg0", "listen-port"]).strip()
        with tunnel(lab, client, hand_made_config(private, address, node, node_key, port)):
            assert ping_within(client.netns, str(node.tunnel_address))
            endpoints = root(lab, layout, 0, ["wg", "show", "wg0", "endpoints"])
            assert str(client.underlay) in endpoints  # the secret the collector must keep
            yield LivePeer(public, str(client.underlay))
    finally:
        root(lab, layout, 0, ["wg", "set", "wg0", "peer", public, "remove"])


def assert_forced_answer(purpose: str, result: tuple[int, str, str], peer: LivePeer) -> None:
    status, stdout, stderr = result
    lines = stdout.splitlines()
    if purpose == "collector":
        assert (status, stderr) == (0, ""), result
        assert lines and EPOCH_LINE.match(lines[0]), result
        assert all(COUNTER_LINE.match(line) or EPOCH_LINE.match(line) for line in lines), result
        assert any(line.startswith(peer.public_key + "\t") for line in lines), result
        assert peer.client_underlay not in stdout
    else:
        # The peers entry point read an empty request and refused it, changing nothing.
        assert status != 0 and len(lines) == 1 and lines[0].startswith("error "), result


@pytest.mark.parametrize("purpose", ["collector", "push"])
def test_the_key_gets_its_forced_command_and_nothing_else(
    lab: Lab, layout, live_peer: LivePeer, purpose: str
) -> None:
    node, other = layout.nodes[0], layout.nodes[1]
    before = node_state(lab, layout, 0)
    client = login(lab, node, ACCOUNTS[purpose], key_file(lab, purpose))
    try:
        transport = client.get_transport()
        assert transport is not None
        refused_requests = {
            "pty": lambda ch: ch.get_pty(),
            "x11": lambda ch: ch.request_x11(),
            "agent": lambda ch: channel_request(ch, "auth-agent-req@openssh.com"),
            "env": lambda ch: channel_request(ch, "env", "LD_PRELOAD", "/tmp/evil.so"),
        }
        for request in refused_requests.values():
            channel = transport.open_session()
            with pytest.raises(paramiko.SSHException):
                request(channel)
            channel.close()
        for destination in ((str(other.underlay), 22), ("127.0.0.1", 22)):
            with pytest.raises(paramiko.ChannelException) as refused:
                transport.open_channel("direct-tcpip", destination, ("127.0.0.1", 0))
            assert refused.value.code == 1, destination  # administratively prohibited
        with pytest.raises(paramiko.SSHException, match="forwarding request denied"):
            transport.request_port_forward("0.0.0.0", 0)
        for command in OTHER_COMMANDS:
            channel = transport.open_session()
            channel.exec_command(command)
            assert_forced_answer(purpose, answer(channel), live_peer)
        shell = transport.open_session()
        shell.invoke_shell()
        assert_forced_answer(purpose, answer(shell), live_peer)
        sftp = transport.open_session()
        sftp.invoke_subsystem("sftp")
        assert_forced_answer(purpose, answer(sftp), live_peer)
        assert transport.is_active()
    finally:
        client.close()
    assert node_state(lab, layout, 0) == before


def openssh(
    lab: Lab, node: LabNode, purpose: str, *options: str, command: tuple[str, ...] = ()
) -> list[str]:
    return [
        "ssh",
        "-F",
        "/dev/null",
        *pinned_ssh_options(lab.known_hosts),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=10",
        "-i",
        str(key_file(lab, purpose)),
        *options,
        f"{ACCOUNTS[purpose]}@{node.underlay}",
        *command,
    ]


@pytest.mark.parametrize("purpose", ["collector", "push"])
def test_openssh_forwards_and_a_terminal_are_refused(
    lab: Lab, layout, deployed: None, tmp_path: Path, purpose: str
) -> None:
    node, other = layout.nodes[1], layout.nodes[2]
    before = node_state(lab, layout, 1)
    run = {"capture_output": True, "text": True, "timeout": 60, "check": False}
    remote = subprocess.run(
        openssh(lab, node, purpose, "-o", "ExitOnForwardFailure=yes", "-N", "-R", "0:127.0.0.1:22"),
        **run,
    )
    assert remote.returncode == 255 and "remote port forwarding failed" in remote.stderr, remote
    stdio = subprocess.run(openssh(lab, node, purpose, "-W", f"{other.underlay}:22"), **run)
    assert stdio.returncode == 255 and "administratively prohibited" in stdio.stderr, stdio
    terminal = subprocess.run(
        openssh(lab, node, purpose, "-tt", command=("/bin/sh",)), **run, input=""
    )
    assert "PTY allocation request failed" in terminal.stderr, terminal
    # A Unix socket forward to one any local user may connect to: sshd must not even try.
    local = tmp_path / "bus.sock"
    # ServerAliveInterval wakes the client every second: OpenSSH 9.2's client loop checks for a
    # SIGTERM only between polls, so one landing just before an idle poll (-N, nothing else to
    # do) would otherwise leave it waiting forever (seen once in CI).
    forward = subprocess.Popen(
        openssh(
            lab,
            node,
            purpose,
            *("-v", "-N", "-o", "ServerAliveInterval=1"),
            *("-L", f"{local}:/run/dbus/system_bus_socket"),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not local.exists():
            assert forward.poll() is None and time.monotonic() < deadline, "no local listener"
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(30)
            conn.connect(str(local))
            conn.sendall(b"\0AUTH EXTERNAL 30\r\n")
            with contextlib.suppress(ConnectionResetError):  # closed: nothing reached the bus
                assert conn.recv(1024) == b""
    finally:
        forward.terminate()
        _out, log = forward.communicate(timeout=30)
    assert re.search(r"channel \d+: open failed", log), log
    assert node_state(lab, layout, 1) == before


# --- the audit --------------------------------------------------------------------------------

BACKUP = "/run/wgfleet-test-access"
SAVED = (
    "/etc/passwd",
    "/etc/passwd-",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/group",
    "/etc/group-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/root/.ssh/authorized_keys",
    "/var/lib/wgpush/.ssh/authorized_keys",
)
ADDED = (
    "/etc/sudoers.d/zz-extra",
    "/etc/ssh/sshd_config.d/05-zz-keys.conf",
    "/var/lib/wgcollect/.ssh/authorized_keys2",
    "/var/lib/wgcollect/.ssh/rc",
)
# Content, mode and owner of every file the widening could touch (what a converged deploy's
# fingerprint reads too): identical after the restore, or later tests would see drift.
TREE = (
    "find /etc /root /var/lib/wgcollect /var/lib/wgpush -xdev -printf '%p %m %u %g %y\\n'"
    " | sort; find /etc /root /var/lib/wgcollect /var/lib/wgpush -xdev -type f"
    " -exec sha256sum {} + | sort"
)


def widen(intruder: str) -> str:
    """Root's shell that widens both accounts the ways an intruder would (after a backup)."""
    saved = " ".join(path.lstrip("/") for path in SAVED)
    return (
        f"set -e; mkdir -m 700 {BACKUP}; tar -C / -cpf {BACKUP}/saved.tar {saved}\n"
        f"printf 'restrict,command=\"sudo -n /usr/local/sbin/wgfleet-peers\" %s\\n%s\\n'"
        f" '{intruder}' '{intruder}' >> /var/lib/wgpush/.ssh/authorized_keys\n"
        f"printf '%s\\n' '{intruder}' >> /root/.ssh/authorized_keys\n"
        "printf 'User_Alias COUNTERS = wgcollect\\nCOUNTERS ALL=(ALL) NOPASSWD: /bin/cat\\n"
        "%%wgpush ALL=(ALL) NOPASSWD: ALL\\n' > /etc/sudoers.d/zz-extra\n"
        "chmod 0440 /etc/sudoers.d/zz-extra\n"
        "usermod -aG adm wgcollect\n"
        "usermod -s /bin/bash -p '$6$intruder$0123456789abcdefghijkl' wgpush\n"
        "printf 'Match User wgcollect\\n\\tAuthorizedKeysFile .ssh/authorized_keys"
        " .ssh/authorized_keys2\\n' > /etc/ssh/sshd_config.d/05-zz-keys.conf\n"
        f"printf '%s\\n' '{intruder}' > /var/lib/wgcollect/.ssh/authorized_keys2\n"
        "touch /var/lib/wgcollect/.ssh/rc\n"
    )


# Safe to run whatever part of widen() ran: puts the saved files back, removes the added ones.
RESTORE = (
    f"if [ -f {BACKUP}/saved.tar ]; then tar -C / -xpf {BACKUP}/saved.tar; fi;"
    f" rm -f {' '.join(ADDED)}; rm -rf {BACKUP}"
)


def test_the_audit_names_every_widening_of_both_accounts(
    lab: Lab, layout, deployed: None, tmp_path: Path
) -> None:
    index = 2
    node = layout.nodes[index]
    intruder = keyfiles.ensure_ssh_keypair(tmp_path / "intruder", "intruder")
    intruder_print = public_key_fingerprint(intruder)
    clean = wgfleet(lab, "--json", "audit", "--limit", node.name)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    tree = root(lab, layout, index, ["sh", "-c", TREE])
    root(lab, layout, index, ["sh", "-c", widen(intruder)])
    try:
        # The extra key without restrict logs in: sshd's ForceCommand still runs only the
        # peers entry point, and refuses a terminal.
        client = login(lab, node, "wgpush", tmp_path / "intruder")
        try:
            transport = client.get_transport()
            assert transport is not None
            channel = transport.open_session()
            with pytest.raises(paramiko.SSHException):
                channel.get_pty()
            channel = transport.open_session()
            channel.exec_command("id")
            status, stdout, _ = answer(channel)
            assert status != 0 and stdout.startswith("error "), stdout
        finally:
            client.close()
        widened = wgfleet(lab, "--json", "audit", "--limit", node.name)
        assert widened.returncode == 1, widened.stderr
        failed = [
            (c["check"], c["evidence"])
            for c in json.loads(widened.stdout)["checks"]
            if not c["passed"]
        ]
        push_file = "/var/lib/wgpush/.ssh/authorized_keys"
        assert failed == [
            (
                "access.root.authorized_keys",
                f"root: /root/.ssh/authorized_keys line 2: key {intruder_print} is not the controller's"
                " deploy key (no options)",
            ),
            (
                "access.wgcollect.key_sources",
                "wgcollect: sshd also reads keys from /var/lib/wgcollect/.ssh/authorized_keys2"
                f" (holds 1 key(s): {intruder_print})",
            ),
            ("access.wgcollect.groups", "wgcollect: member of group `adm`"),
            ("access.wgcollect.rc_files", "wgcollect: /var/lib/wgcollect/.ssh/rc exists"),
            (
                "access.wgcollect.sudo",
                "wgcollect: sudo also grants `wgcollect ALL = (ALL) NOPASSWD: /bin/cat`"
                " (in /etc/sudoers.d/zz-extra)",
            ),
            (
                "access.wgpush.authorized_keys",
                f"wgpush: {push_file} line 2: key {intruder_print} is not the controller's push key"
                ' (`restrict,command="sudo -n /usr/local/sbin/wgfleet-peers"`)',
            ),
            (
                "access.wgpush.authorized_keys",
                f"wgpush: {push_file} line 3: key {intruder_print} is not the controller's push key"
                " (no options)",
            ),
            ("access.wgpush.login", "wgpush: login shell `/bin/bash`, want /bin/sh"),
            ("access.wgpush.login", "wgpush: a password is set, want none (!)"),
            (
                "access.wgpush.sudo",
                "wgpush: sudo also grants `%wgpush ALL = (ALL) NOPASSWD: ALL`"
                " (in /etc/sudoers.d/zz-extra)",
            ),
        ]
        # One line per finding on stderr too, and no key material anywhere in the output.
        assert widened.stderr.count("wgfleet: audit failed on node3: access.") == len(failed)
        blob = intruder.split()[1]
        assert blob not in widened.stdout + widened.stderr
    finally:
        root(lab, layout, index, ["sh", "-c", RESTORE])
    assert root(lab, layout, index, ["sh", "-c", TREE]) == tree
    again = wgfleet(lab, "--json", "audit", "--limit", node.name)
    assert again.returncode == 0, again.stdout + again.stderr
