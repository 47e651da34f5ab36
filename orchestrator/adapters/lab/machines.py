"""Lab nodes: Debian systems booting their own systemd under systemd-nspawn.

Each node is an overlay over the shared rootfs (upper/work per node), booted by
``systemd-nspawn --boot`` inside its network namespace. The host is not a systemd machine, so
nspawn runs in a private mount namespace with a tmpfs on /run/systemd and its own cgroup2
directory (see shared LAB.md). Processes are found and stopped by PID, verified by command line.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.keyfiles import new_host_key
from orchestrator.adapters.proc import pid_alive, run
from orchestrator.core.lab_layout import LabNode
from orchestrator.errors import LabError

CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))
HOST_KEY = Path("etc/ssh/ssh_host_ed25519_key")
PREPARED_MARKER = Path("etc/wgfleet-lab-node")

# The script nspawn's launcher runs: join the node's own cgroup, hide the host's (absent)
# systemd from nspawn, then become systemd-nspawn with the arguments passed after it.
LAUNCHER = (
    'cgroup="$1"; shift; '
    'if [ -n "$cgroup" ]; then echo $$ > "$cgroup/cgroup.procs"; fi; '
    "mkdir -p /run/systemd && mount -t tmpfs -o mode=0755 tmpfs /run/systemd; "
    'exec "$@"'
)


@dataclass(frozen=True)
class NodePaths:
    root: Path

    @property
    def upper(self) -> Path:
        return self.root / "upper"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    @property
    def console(self) -> Path:
        return self.root / "console.log"


def node_paths(state_dir: Path, node: LabNode) -> NodePaths:
    return NodePaths(state_dir / "nodes" / node.name)


def mounted_targets() -> set[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return {line.split()[4] for line in mountinfo}


def mount_overlay(rootfs: Path, paths: NodePaths) -> None:
    for directory in (paths.upper, paths.work, paths.merged):
        directory.mkdir(parents=True, exist_ok=True)
    if str(paths.merged) in mounted_targets():
        return
    options = f"lowerdir={rootfs},upperdir={paths.upper},workdir={paths.work}"
    run(["mount", "-t", "overlay", "overlay", "-o", options, str(paths.merged)])


def unmount_overlay(paths: NodePaths) -> None:
    if str(paths.merged) in mounted_targets():
        run(["umount", str(paths.merged)], check=False)
        if str(paths.merged) in mounted_targets():
            run(["umount", "--lazy", str(paths.merged)], check=False)


def prepare_identity(paths: NodePaths, node: LabNode, controller_public_key: str) -> str:
    """Give a node its own machine-id, hostname and host key; return the host public key."""
    root = paths.merged
    public_file = root / (str(HOST_KEY) + ".pub")
    if (root / PREPARED_MARKER).exists() and public_file.exists():
        return public_file.read_text(encoding="ascii").strip()
    (root / "etc" / "machine-id").write_text(secrets.token_hex(16) + "\n", encoding="ascii")
    (root / "etc" / "hostname").write_text(node.name + "\n", encoding="ascii")
    hosts = (
        f"127.0.0.1 localhost\n127.0.1.1 {node.name}\n::1 localhost ip6-localhost ip6-loopback\n"
    )
    (root / "etc" / "hosts").write_text(hosts, encoding="ascii")
    private, public = new_host_key()
    key_file = root / HOST_KEY
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_file.write_text(f"{public} root@{node.name}\n", encoding="ascii")
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    authorized = ssh_dir / "authorized_keys"
    fd = os.open(authorized, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(controller_public_key.strip() + "\n")
    (root / PREPARED_MARKER).write_text(f"{node.machine}\n", encoding="ascii")
    return public


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def nspawn_machine(pid: int) -> str | None:
    """The ``-M`` name if ``pid`` is a systemd-nspawn process, else None."""
    args = cmdline(pid)
    if not args or not args[0].endswith("systemd-nspawn"):
        return None
    for flag, value in itertools.pairwise(args):
        if flag == "-M":
            return value
    return None


def find_machines(prefix: str) -> dict[str, int]:
    """Every running nspawn whose machine name starts with ``prefix``: machine -> PID."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            machine = nspawn_machine(int(entry.name))
            if machine and machine.startswith(prefix):
                found[machine] = int(entry.name)
    return found


def cgroup_dirs(machine: str) -> list[Path]:
    return [root / machine for root in CGROUP_ROOTS if root.is_dir()]


def start_machine(node: LabNode, paths: NodePaths) -> int:
    """Boot the node; return the PID of its systemd-nspawn process."""
    cgroup = ""
    unified = CGROUP_ROOTS[0]
    if unified.is_dir():
        (unified / node.machine).mkdir(exist_ok=True)
        cgroup = str(unified / node.machine)
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        LAUNCHER,
        "wgfleet-lab-launch",
        cgroup,
        "systemd-nspawn",
        "--boot",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path=/run/netns/{node.netns}",
        "--capability=CAP_NET_ADMIN",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
        "--bind=/dev/net/tun",
        "--console=read-only",
        "-M",
        node.machine,
        "-D",
        str(paths.merged),
    ]
    env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
    with open(paths.console, "ab") as console:
        # A new session: Ctrl-C in the terminal that ran `lab up` must not take the fleet down.
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=console,
            env=env,
            start_new_session=True,
        )
    return process.pid


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def _kill_cgroup_members(directory: Path) -> None:
    for procs in directory.rglob("cgroup.procs"):
        try:
            pids = [int(p) for p in procs.read_text().split()]
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def remove_cgroups(machine: str) -> None:
    """Remove the node's cgroup directories in both trees, deepest first."""
    for top in cgroup_dirs(machine):
        if not top.exists():
            continue
        _kill_cgroup_members(top)
        for _attempt in range(50):
            directories = sorted(
                (p for p in top.rglob("*") if p.is_dir()),
                key=lambda p: len(p.parts),
                reverse=True,
            )
            try:
                for directory in [*directories, top]:
                    directory.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        if top.exists():
            raise LabError(f"could not remove cgroup {top}: processes still inside")


def stop_machine(machine: str, pid: int | None, timeout: float = 20.0) -> None:
    """Shut the node down cleanly (SIGTERM to nspawn), forcefully if it does not stop in time."""
    if pid is not None and nspawn_machine(pid) == machine:
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
    remove_cgroups(machine)
