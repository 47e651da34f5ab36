"""A lab client's tunnel brought up the way a customer does: the real ``wg-quick up FILE`` with
the configuration exactly as handed out, inside the client's namespace.

- The file is written byte for byte (0600, in a 0700 directory of the lab's state) under the
  name wg-quick takes the interface from: the client's ``wg_quick_interface``, which carries
  the lab's name, because wireguard-go's UAPI sockets live in the host's /var/run/wireguard.
- This kernel has no WireGuard module, so wg-quick starts wireguard-go, which daemonizes: we
  find it afterwards by its command line and its network namespace, and track its PID.
- ``DNS =`` makes wg-quick call ``resolvconf``. A stand-in first on wg-quick's PATH writes the
  servers to ``/etc/netns/<namespace>/resolv.conf`` (and only there: its path comes from the
  environment, it refuses to run without it). ``ip netns exec`` bind-mounts that file over
  /etc/resolv.conf for every command it runs in the namespace, so the client's own resolver
  uses the tunnel's DNS while the host's /etc/resolv.conf is never touched.
- ``down`` runs ``wg-quick down``, then removes whatever is left, also after a failed test or
  a crash: the process (by PID), the interface, wg-quick's nftables tables and policy rules, the
  ``src_valid_mark`` setting it changed, the socket and the stand-in's files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from pathlib import Path

from orchestrator.adapters.private_files import write_private
from orchestrator.adapters.proc import cmdline, pid_alive, run, stop_pid
from orchestrator.core.lab_layout import LabClient, name_prefix, netns_prefix
from orchestrator.errors import LabError

UAPI_DIR = Path("/var/run/wireguard")
NETNS_ETC = Path("/etc/netns")
NETNS_DIR = Path("/run/netns")
USERSPACE_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
RESOLV_CONF_ENV = "WGFLEET_LAB_RESOLV_CONF"
SRC_VALID_MARK = "net.ipv4.conf.all.src_valid_mark"
# Set when a lab made /etc/netns (Debian has none): the last tunnel down removes it again.
ETC_NETNS_MARKER = Path("/run/wgfleet-lab-made-etc-netns")

RESOLVCONF_STANDIN = f"""#!/bin/sh
# wgfleet lab: stands in for resolvconf(8) when wg-quick runs in a lab client's namespace.
# It writes only the file named by ${RESOLV_CONF_ENV} (/etc/netns/NS/resolv.conf, which
# `ip netns exec NS` mounts over /etc/resolv.conf), never the host's /etc/resolv.conf.
set -eu
target="${{{RESOLV_CONF_ENV}:?wgfleet lab resolvconf stand-in: no target file}}"
case "${{1:-}}" in
  -a) cat >"$target" ;;
  -d) : >"$target" ;;
  *) echo "wgfleet lab resolvconf stand-in: unsupported: $*" >&2; exit 2 ;;
esac
"""


def config_path(client: LabClient, directory: Path) -> Path:
    return directory / f"{client.wg_quick_interface}.conf"


def resolv_conf(client: LabClient) -> Path:
    """The client namespace's resolv.conf while a wg-quick tunnel with DNS is up."""
    return NETNS_ETC / client.netns / "resolv.conf"


def _pid_file(directory: Path) -> Path:
    return directory / "wireguard-go.pid"


def _mark_file(directory: Path) -> Path:
    return directory / "src_valid_mark.before"


def _env(client: LabClient, directory: Path) -> dict[str, str]:
    return {
        **USERSPACE_ENV,
        "PATH": f"{directory / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        RESOLV_CONF_ENV: str(resolv_conf(client)),
    }


def _in_netns(client: LabClient, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", client.netns, *argv]


def _netns_inode(netns: str) -> int | None:
    try:
        return os.stat(NETNS_DIR / netns).st_ino
    except OSError:
        return None


def find_wireguard_go(client: LabClient) -> int | None:
    """The wireguard-go serving the client's wg-quick interface inside its namespace."""
    inode = _netns_inode(client.netns)
    if inode is None:
        return None
    wanted = client.wg_quick_interface.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            in_netns = os.stat(entry / "ns" / "net").st_ino == inode
        except OSError:
            continue
        if in_netns and args[0].endswith(b"wireguard-go") and wanted in args[1:]:
            return int(entry.name)
    return None


def _tracked_pid(client: LabClient, directory: Path) -> int | None:
    try:
        pid = int(_pid_file(directory).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return find_wireguard_go(client)
    if pid_alive(pid) and client.wg_quick_interface.encode() in cmdline(pid):
        return pid
    return find_wireguard_go(client)


def _sysctl(client: LabClient, name: str) -> str:
    return run(_in_netns(client, "sysctl", "-n", name)).stdout.strip()


def up(client: LabClient, config_text: str, directory: Path) -> int | None:
    """`wg-quick up` the file in the client's namespace; return wireguard-go's PID (None when
    a kernel module serves the interface). A failure leaves nothing behind."""
    down(client, directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    config = config_path(client, directory)
    write_private(config, config_text.encode("utf-8"))
    bin_dir = directory / "bin"
    bin_dir.mkdir(mode=0o700, exist_ok=True)
    write_private(bin_dir / "resolvconf", RESOLVCONF_STANDIN.encode("ascii"), mode=0o700)
    # Present before wg-quick runs: without it `ip netns exec` would show the host's file.
    if not NETNS_ETC.exists():
        NETNS_ETC.mkdir(mode=0o755)
        ETC_NETNS_MARKER.write_text("wgfleet lab\n", encoding="ascii")
    resolv_conf(client).parent.mkdir(mode=0o755, exist_ok=True)
    write_private(resolv_conf(client), b"", mode=0o644)
    write_private(_mark_file(directory), _sysctl(client, SRC_VALID_MARK).encode("ascii"))
    try:
        run(_in_netns(client, "wg-quick", "up", str(config)), env=_env(client, directory))
        pid = find_wireguard_go(client)
        if pid is not None:
            write_private(_pid_file(directory), f"{pid}\n".encode("ascii"))
    except LabError:
        down(client, directory)
        raise
    return pid


def _wg_quick_rules(client: LabClient, family: str) -> list[int]:
    """Priorities of the policy rules wg-quick adds for a default route: ``not fwmark T
    lookup T`` and ``lookup main suppress_prefixlength 0``."""
    out = run(["ip", "-n", client.netns, "-j", family, "rule", "show"], check=False).stdout
    try:
        rules = json.loads(out or "[]")
    except ValueError:
        return []
    return [
        int(rule["priority"])
        for rule in rules
        if "suppress_prefixlen" in rule or ("not" in rule and "fwmark" in rule)
    ]


def _nft_tables(client: LabClient) -> list[tuple[str, str]]:
    out = run(_in_netns(client, "nft", "list", "tables"), check=False).stdout
    wanted = f"wg-quick-{client.wg_quick_interface}"
    tables = [tuple(line.split()[1:3]) for line in out.splitlines() if line.startswith("table ")]
    return [(family, name) for family, name in tables if name == wanted]


def leftovers(client: LabClient, directory: Path) -> list[str]:
    """What of a wg-quick tunnel is still there (empty once it is fully down)."""
    found = []
    pid = _tracked_pid(client, directory)
    if pid is not None:
        found.append(f"process {pid}")
    if client.netns and _netns_inode(client.netns) is not None:
        links = run(["ip", "-n", client.netns, "-o", "link", "show"], check=False).stdout
        if re.search(rf": {re.escape(client.wg_quick_interface)}[:@]", links):
            found.append(f"interface {client.wg_quick_interface}")
        found += [f"nftables table {family} {name}" for family, name in _nft_tables(client)]
        for family in ("-4", "-6"):
            found += [f"rule {family} {p}" for p in _wg_quick_rules(client, family)]
    if (UAPI_DIR / f"{client.wg_quick_interface}.sock").exists():
        found.append(f"socket {UAPI_DIR / client.wg_quick_interface}.sock")
    if resolv_conf(client).exists():
        found.append(f"file {resolv_conf(client)}")
    return found


def down(client: LabClient, directory: Path) -> list[str]:
    """`wg-quick down`, then remove what it left; returns what had to be removed by hand."""
    # Every `up` leaves one of these until its `down` ends: without any, there is nothing to
    # do (and `lab down` skips a dozen commands per client).
    if not (
        directory.exists()
        or (UAPI_DIR / f"{client.wg_quick_interface}.sock").exists()
        or resolv_conf(client).exists()
    ):
        return []
    config = config_path(client, directory)
    netns_up = _netns_inode(client.netns) is not None
    if config.exists() and netns_up:
        run(
            _in_netns(client, "wg-quick", "down", str(config)),
            env=_env(client, directory),
            check=False,
        )
    by_hand = leftovers(client, directory)
    pid = _tracked_pid(client, directory)
    if pid is not None:
        stop_pid(pid)
    if netns_up:
        run(["ip", "-n", client.netns, "link", "del", client.wg_quick_interface], check=False)
        for family, name in _nft_tables(client):
            run(_in_netns(client, "nft", "delete", "table", family, name), check=False)
        for family in ("-4", "-6"):
            for priority in _wg_quick_rules(client, family):
                run(
                    ["ip", "-n", client.netns, family, "rule", "del", "priority", str(priority)],
                    check=False,
                )
        with contextlib.suppress(OSError, ValueError):
            before = _mark_file(directory).read_text(encoding="ascii").strip()
            if before.isdigit() and _sysctl(client, SRC_VALID_MARK) != before:
                run(_in_netns(client, "sysctl", "-q", "-w", f"{SRC_VALID_MARK}={before}"))
    (UAPI_DIR / f"{client.wg_quick_interface}.sock").unlink(missing_ok=True)
    shutil.rmtree(NETNS_ETC / client.netns, ignore_errors=True)
    _release_etc_netns()
    shutil.rmtree(directory, ignore_errors=True)
    return by_hand


def _release_etc_netns() -> None:
    """Remove /etc/netns once empty if a lab made it (rmdir refuses a directory in use)."""
    if ETC_NETNS_MARKER.exists():
        with contextlib.suppress(OSError):
            NETNS_ETC.rmdir()
            ETC_NETNS_MARKER.unlink(missing_ok=True)


def sweep(lab: str) -> list[str]:
    """After the lab's namespaces are gone: the /etc/netns directories and the UAPI sockets of
    its wg-quick interfaces, found by name alone."""
    removed = []
    if NETNS_ETC.is_dir():
        for entry in NETNS_ETC.iterdir():
            if entry.name.startswith(netns_prefix(lab)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f"directory {entry}")
    _release_etc_netns()
    socket_name = re.compile(rf"^{re.escape(name_prefix(lab))}q\d+\.sock$")
    if UAPI_DIR.is_dir():
        for entry in UAPI_DIR.iterdir():
            if socket_name.match(entry.name):
                entry.unlink(missing_ok=True)
                removed.append(f"socket {entry}")
    return removed
