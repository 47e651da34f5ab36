"""The shared, read-only Debian root filesystem every lab node boots from.

Built once with debootstrap and cached under a name derived from the suite and the package list,
so changing either builds a new one. Nodes never write to it: each gets an overlay.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.adapters.proc import require_tools, run
from orchestrator.errors import EnvironmentProblem, LabError

# What a node needs before any role runs: lab nodes have no route to a package mirror.
NODE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "wireguard-tools",
    "wireguard-go",
    "nftables",
    "sudo",
    "iproute2",
    "iputils-ping",
    "procps",
    # The resolver role's no-log resolver and the root zone's trust anchor it validates with.
    "unbound",
    "dns-root-data",
)
READY_MARKER = ".wgfleet-rootfs-ready"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = (
    Path("/etc/apt/sources.list.d/debian.sources"),
    Path("/etc/apt/sources.list"),
)

# The lab's baseline sshd settings; the ssh-hardening role adds its own stricter drop-in.
LAB_SSHD_DROPIN = """\
# Written by wgfleet's lab: the only host key is the one the lab pins in known_hosts.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
"""


def host_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror the host itself uses: the only one this machine can reach."""
    for source in sources:
        if not source.exists():
            continue
        for line in source.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                for uri in line.split()[1:]:
                    if "security" not in uri:
                        return uri
            if line.startswith("deb ") and "security" not in line:
                parts = line.split()
                found = next((p for p in parts[1:] if "://" in p), None)
                if found:
                    return found
    return DEFAULT_MIRROR


def rootfs_name(suite: str, packages: tuple[str, ...] = NODE_PACKAGES) -> str:
    digest = hashlib.sha256("\n".join((suite, *sorted(packages))).encode()).hexdigest()[:12]
    return f"{suite}-{digest}"


def rootfs_path(cache: Path, suite: str) -> Path:
    return cache / rootfs_name(suite)


def is_ready(path: Path) -> bool:
    return (path / READY_MARKER).exists()


def _strip_identity(root: Path) -> None:
    """Remove what debootstrap baked in that must differ per node (LAB.md: shared host keys)."""
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc" / "hostname").unlink(missing_ok=True)
    (root / "etc" / "machine-id").write_text("", encoding="ascii")
    dbus_id = root / "var" / "lib" / "dbus" / "machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    dropin = root / "etc" / "ssh" / "sshd_config.d" / "00-wgfleet-lab.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(LAB_SSHD_DROPIN, encoding="ascii")
    # No package mirror is reachable from a node: an empty source list makes that explicit.
    for source in (root / "etc" / "apt" / "sources.list.d").glob("*"):
        source.unlink()
    (root / "etc" / "apt" / "sources.list").write_text("", encoding="ascii")
    shutil.rmtree(root / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    (root / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True, exist_ok=True)


def ensure_rootfs(
    cache: Path,
    suite: str,
    mirror: str | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Path:
    """Return the cached rootfs for ``suite``, building it first if needed (about a minute)."""
    target = rootfs_path(cache, suite)
    if is_ready(target):
        return target
    require_tools("debootstrap")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".build.lock", "w", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second `lab up` waits instead of building twice
        if is_ready(target):
            return target
        building = cache / f".{target.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        chosen = mirror or host_mirror()
        progress(f"building the node root filesystem with debootstrap ({suite}, {chosen})")
        started = time.monotonic()
        try:
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(NODE_PACKAGES)}",
                    suite,
                    str(building),
                    chosen,
                ],
                timeout=1800,
            )
        except LabError as exc:
            shutil.rmtree(building, ignore_errors=True)
            raise EnvironmentProblem(f"could not build the lab rootfs: {exc}") from None
        _strip_identity(building)
        (building / READY_MARKER).write_text(f"{suite}\n", encoding="ascii")
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
        progress(f"rootfs ready at {target} in {time.monotonic() - started:.0f} s")
    return target
