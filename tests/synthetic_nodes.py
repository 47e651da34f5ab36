"""Synthetic nodes for benchmarks and scale tests: one real sshd answering for many addresses.

A network namespace of our own holds the node addresses (the worker's synthetic node networks,
tests/worker_space.py: up to 1,022 IPv4 addresses, or with ``ipv6=True`` up to 65,000 IPv6
ones; on its loopback, routed from the host through one veth pair that carries both families)
and one OpenSSH server, run from the cached lab rootfs in a chroot inside a private mount
namespace. Every SSH session is a real
key exchange, authentication and exec; only the node's answer is synthetic: a forced command
prints the counters file written for the address the client dialled (`wgfleet-counters`),
answers a push like a node with nothing to change (`wgfleet-peers`), or runs any other command
with `/usr/local/bin/wg` printing the same counters (so `ansible -m command -a "wg show wg0
transfer"` works as a reference). Nothing runs outside the namespace; `stop()` kills every
process in it by PID, unmounts, and deletes the namespace and route, also after a failure.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from orchestrator.adapters.keyfiles import ensure_ssh_keypair, new_host_key, write_private
from orchestrator.adapters.lab import network
from orchestrator.adapters.proc import run
from orchestrator.errors import LabError
from tests.worker_space import synthetic_space, synthetic_space6

USERS = ("wgcollect", "wgpush")
FIRST_UID = 64100

NODE_SCRIPT = r"""#!/bin/sh
# Forced command of the synthetic nodes: the dialled address picks the answer.
set -- $SSH_CONNECTION
node="$3"
case "$SSH_ORIGINAL_COMMAND" in
  wgfleet-counters)
    # A test that wants to see connection reuse creates this file: one client port per exec.
    if [ -w /var/lib/wgbench/ports ]; then echo "$1:$2>$3" >> /var/lib/wgbench/ports; fi
    # A test that wants a long sync (to kill a controller in the middle) writes seconds here.
    if [ -r /var/lib/wgbench/delay ]; then sleep "$(cat /var/lib/wgbench/delay)"; fi
    exec cat "/var/lib/wgbench/counters/$node" ;;
  wgfleet-peers)
    cat >/dev/null
    printf 'epoch %s\nsummary interface=up unchanged=0 static=0 elapsed_ms=0\nok\n' \
      "$(head -n 1 "/var/lib/wgbench/counters/$node" | cut -d ' ' -f 2)" ;;
  *) exec /bin/sh -c "$SSH_ORIGINAL_COMMAND" ;;
esac
"""

WG_SCRIPT = r"""#!/bin/sh
# `wg show IFACE transfer` of a synthetic node: its counters without the epoch line.
set -- $SSH_CONNECTION
exec tail -n +2 "/var/lib/wgbench/counters/$3"
"""

SSHD_CONFIG = """\
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey /etc/wgbench/host_key
PidFile none
AuthorizedKeysFile /etc/wgbench/keys/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 2000
MaxSessions 100
LogLevel ERROR
ForceCommand /usr/local/bin/wgbench-node
"""

# Runs inside `unshare -m`: the mounts it makes vanish with the namespace's last process.
LAUNCHER = (
    'root="$1"; mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" && '
    'exec chroot "$root" /usr/sbin/sshd -D -e -f /etc/wgbench/sshd_config'
)


def cached_rootfs() -> Path:
    """The lab's cached node rootfs (default settings), built first if missing."""
    from orchestrator.adapters.lab.rootfs import ensure_rootfs
    from orchestrator.settings import settings_from_mapping

    lab = settings_from_mapping(None, "defaults", Path.cwd()).lab
    return ensure_rootfs(lab.rootfs_cache, lab.suite, lab.mirror)


# IPv6 node addresses one namespace holds: `ip -batch` adds 10,000 in about a second.
MAX_IPV6_NODES = 65_000


class SyntheticNodes:
    """``count`` node addresses answered by one sshd; use as a context manager.

    ``ipv6``: the nodes' addresses are IPv6 (as sshd writes them in SSH_CONNECTION: RFC 5952
    text, which is also how they are stored and pinned), for fleets beyond the 1,022 IPv4
    addresses of the worker's block."""

    def __init__(self, workdir: Path, rootfs: Path, count: int, *, ipv6: bool = False) -> None:
        # Namespace and networks of this process's worker (tests/worker_space.py): a test
        # (test_shards) and a benchmark (test_bench_suite) in two xdist workers, or two test
        # runs, build theirs at the same time.
        self.netns, self.node_network, self.link_network = synthetic_space()
        self.node_network6, self.link_network6 = synthetic_space6()
        nodes = self.node_network6 if ipv6 else self.node_network
        limit = MAX_IPV6_NODES if ipv6 else self.node_network.num_addresses - 2
        if not 1 <= count <= limit:
            raise ValueError(f"count {count}: between 1 and {limit}")
        self.workdir = workdir
        self.rootfs = rootfs
        self.count = count
        self.ipv6 = ipv6
        self.host_link = f"{self.netns}-h"
        self.addresses = [str(nodes.network_address + 1 + i) for i in range(count)]
        self.merged = workdir / "merged"
        self.known_hosts = workdir / "known_hosts"
        self.keys = {user: workdir / f"{user}_key" for user in USERS}
        self.sshd_log = workdir / "sshd.log"
        self._sshd: subprocess.Popen[bytes] | None = None

    # --- the node side ---------------------------------------------------------------------

    def counters_path(self, address: str) -> Path:
        return self.merged / "var/lib/wgbench/counters" / address

    def record_client_ports(self) -> Path:
        """From now on each counters exec appends its connection (client address:port>node) to the file."""
        path = self.merged / "var/lib/wgbench/ports"
        path.write_text("", encoding="ascii")
        path.chmod(0o666)
        return path

    def delay_counters(self, seconds: float) -> None:
        """Each counters exec from now on answers after ``seconds`` (0: at once again)."""
        path = self.merged / "var/lib/wgbench/delay"
        if seconds:
            path.write_text(f"{seconds}\n", encoding="ascii")
        else:
            path.unlink(missing_ok=True)

    def write_counters(self, address: str, text: str) -> None:
        path = self.counters_path(address)
        tmp = path.with_name(f".{address}.tmp")
        tmp.write_text(text, encoding="ascii")
        os.replace(tmp, path)  # a session reading it sees the old or the new answer, whole

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> SyntheticNodes:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if network.netns_exists(self.netns):
            raise LabError(f"namespace {self.netns} exists: another benchmark runs, or stop it")
        self._mount_rootfs()
        self._prepare_root()
        self._make_network()
        self._start_sshd()

    def _mount_rootfs(self) -> None:
        for part in ("upper", "work", "merged"):
            (self.workdir / part).mkdir(parents=True, exist_ok=True)
        options = (
            f"lowerdir={self.rootfs},upperdir={self.workdir / 'upper'},"
            f"workdir={self.workdir / 'work'}"
        )
        run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)])

    def _prepare_root(self) -> None:
        root = self.merged
        bench = root / "etc/wgbench"
        (bench / "keys").mkdir(parents=True, exist_ok=True)
        (root / "var/lib/wgbench/counters").mkdir(parents=True, exist_ok=True)
        (root / "run/sshd").mkdir(parents=True, exist_ok=True)
        private, public = new_host_key()
        write_private(bench / "host_key", private)
        (bench / "sshd_config").write_text(SSHD_CONFIG, encoding="ascii")
        for path, text in (
            (root / "usr/local/bin/wgbench-node", NODE_SCRIPT),
            (root / "usr/local/bin/wg", WG_SCRIPT),
        ):
            path.write_text(text, encoding="ascii")
            path.chmod(0o755)
        passwd, shadow, group = [], [], []
        for offset, user in enumerate(USERS):
            uid = FIRST_UID + offset
            home = root / "var/lib/wgbench/home" / user
            home.mkdir(parents=True, exist_ok=True)
            os.chown(home, uid, uid)
            passwd.append(f"{user}:x:{uid}:{uid}::/var/lib/wgbench/home/{user}:/bin/sh\n")
            shadow.append(f"{user}:*:20000:0:99999:7:::\n")
            group.append(f"{user}:x:{uid}:\n")
            line = ensure_ssh_keypair(self.keys[user], f"{user}@wgbench")
            (bench / "keys" / user).write_text(line + "\n", encoding="ascii")
        for name, lines in (("passwd", passwd), ("shadow", shadow), ("group", group)):
            with open(root / "etc" / name, "a", encoding="ascii") as handle:
                handle.writelines(lines)
        self.known_hosts.write_text(
            "".join(f"{address} {public}\n" for address in self.addresses), encoding="ascii"
        )
        for address in self.addresses:
            self.write_counters(address, "epoch bench\n")

    def _make_network(self) -> None:
        network.note_netns_dir_state()
        host, inside = (str(a) for a in list(self.link_network.hosts())[:2])
        run(["ip", "netns", "add", self.netns])
        run(
            [
                "ip", "link", "add", self.host_link, "type", "veth",
                "peer", "name", "eth0", "netns", self.netns,
            ]
        )  # fmt: skip
        run(["ip", "addr", "add", f"{host}/{self.link_network.prefixlen}", "dev", self.host_link])
        run(["ip", "link", "set", self.host_link, "up"])
        run(["ip", "-n", self.netns, "addr", "add", f"{inside}/{self.link_network.prefixlen}",
             "dev", "eth0"])  # fmt: skip
        host6, inside6 = (str(a) for a in list(self.link_network6.hosts())[:2])
        prefix6 = self.link_network6.prefixlen
        # nodad: the link is usable at once, not after duplicate address detection.
        run(["ip", "addr", "add", f"{host6}/{prefix6}", "dev", self.host_link, "nodad"])
        run(["ip", "-n", self.netns, "addr", "add", f"{inside6}/{prefix6}", "dev", "eth0",
             "nodad"])  # fmt: skip
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        run(["ip", "-n", self.netns, "link", "set", "eth0", "up"])
        host_prefix = 128 if self.ipv6 else 32
        batch = "".join(f"addr add {a}/{host_prefix} dev lo\n" for a in self.addresses)
        run(["ip", "-n", self.netns, "-batch", "-"], input_text=batch)
        run(["ip", "route", "add", str(self.node_network), "via", inside])
        run(["ip", "-6", "route", "add", str(self.node_network6), "via", inside6,
             "dev", self.host_link])  # fmt: skip
        if self.ipv6:
            self._wait_for_local_routes()

    def _wait_for_local_routes(self) -> None:
        """The kernel adds an IPv6 address's local route after `ip addr add` returns (its
        address configuration work): 10,000 take seconds, and a node dialled before its route
        is there answers "network unreachable"."""
        deadline = time.monotonic() + 120
        while True:
            listed = run(["ip", "-n", self.netns, "-6", "route", "show", "table", "local",
                          "dev", "lo"]).stdout  # fmt: skip
            routed = sum(
                1
                for line in listed.splitlines()
                if line.startswith("local ")
                and ipaddress.IPv6Address(line.split()[1]) in self.node_network6
            )
            if routed >= self.count:
                return
            if time.monotonic() > deadline:
                raise LabError(f"{routed} of {self.count} synthetic IPv6 node addresses routed")
            time.sleep(0.2)

    def _start_sshd(self) -> None:
        with open(self.sshd_log, "wb") as log:
            self._sshd = subprocess.Popen(
                [
                    "nsenter", f"--net=/run/netns/{self.netns}",
                    "unshare", "-m", "--propagation", "private",
                    "sh", "-c", LAUNCHER, "sh", str(self.merged),
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._sshd.poll() is not None:
                raise LabError(f"synthetic sshd exited: {self.sshd_log.read_text()[-400:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.addresses[0], 22), timeout=0.5) as probe,
            ):
                if probe.recv(4).startswith(b"SSH-"):
                    return
            time.sleep(0.1)
        raise LabError("synthetic sshd did not answer within 15 s")

    def _pids(self) -> list[int]:
        return network.netns_pids(self.netns)

    def stop(self) -> None:
        """Kill every process in the namespace by PID, then undo mounts, route and namespace."""
        for _ in range(50):
            pids = self._pids()
            if self._sshd is not None and self._sshd.poll() is None:
                pids.append(self._sshd.pid)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        if self._sshd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._sshd.wait(timeout=5)
        run(["ip", "route", "del", str(self.node_network)], check=False)
        run(["ip", "-6", "route", "del", str(self.node_network6)], check=False)
        network.delete_netns(self.netns, self.host_link)
        network.release_netns_dir()
        if self.merged.is_mount():
            run(["umount", str(self.merged)], check=False)
