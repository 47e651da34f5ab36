"""Read-only snapshot of what a deploy manages on a node, one line per fact.

Sent over SSH to ``python3 -`` on the node (root, the deploy's account) and also importable for
tests, which point ``WGFLEET_PROBE_ROOT`` at a directory tree instead of ``/``. Standard library
only: a node has python3 and nothing else of ours before its first deploy.

Each line is ``SECTION<TAB>FACT``. The controller hashes the lines of each section and compares
them with the hashes recorded right after the last full Ansible run: any difference sends the
node through the full run again. So the probe reads broadly (all of /etc, /usr/local, /var/log,
login homes, unit states, live sysctl values, firewall rules, the WireGuard interfaces, the
package database) and records nothing that moves by itself:
- no times (mtime, atime), only content, type, mode and owner;
- not the peer set a push keeps in /etc/wireguard (``*.peers``, ``*.handover``): pushes change
  it between deploys;
- no unit that starts and stops on a timer by design, no login session, no transient unit.
It prints content hashes and names, never file contents: it may hash a private key, and a hash
of a 256-bit random key reveals nothing about it.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator

ROOT = os.environ.get("WGFLEET_PROBE_ROOT", "/")

# Directory trees whose content a deploy decides. /etc is read whole: a foreign drop-in
# (journald, sshd, sudoers, apt) is exactly the drift the roles remove.
# /var/lib/unbound: the resolver must write nothing there (no auto-trust-anchor copy).
TREES = ("etc", "usr/local", "var/log", "var/lib/unbound")
# Files a push rewrites between deploys (the live peer set and pending key handovers).
PUSH_STATE_SUFFIXES = (".peers", ".handover")
PUSH_STATE_DIR = "etc/wireguard"
# Units that come and go or start and stop on their own: per-login units, transient units
# (systemd-run, a diagnostics session's timer) and the timer-driven peer watch.
RESTLESS_UNIT_PREFIXES = ("user@", "user-runtime-dir@", "session-", "run-")
RESTLESS_SERVICES = ("wgfleet-watch@",)
HOME_DEPTH = 3


def path_of(relative: str) -> str:
    return os.path.join(ROOT, relative)


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(path: str, shown: str) -> str:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return f"{shown} absent"
    mode = stat.S_IMODE(info.st_mode)
    owner = f"{mode:04o} {info.st_uid}:{info.st_gid}"
    if stat.S_ISLNK(info.st_mode):
        return f"{shown} link {owner} -> {os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        return f"{shown} dir {owner}"
    if stat.S_ISREG(info.st_mode):
        try:
            content = file_digest(path)
        except OSError as exc:
            content = f"unreadable:{exc.errno}"
        return f"{shown} file {owner} {info.st_size} {content}"
    return f"{shown} other {owner} {stat.S_IFMT(info.st_mode):o}"


def is_push_state(relative: str) -> bool:
    return os.path.dirname(relative) == PUSH_STATE_DIR and relative.endswith(PUSH_STATE_SUFFIXES)


def walk(relative_top: str, max_depth: int | None = None) -> Iterator[str]:
    top = path_of(relative_top)
    if not os.path.lexists(top):
        yield f"/{relative_top} absent"
        return
    base_depth = relative_top.count("/")
    for directory, subdirs, files in os.walk(top):
        relative_dir = os.path.relpath(directory, ROOT)
        depth = relative_dir.count("/") - base_depth
        if max_depth is not None and depth >= max_depth:
            subdirs[:] = []
        subdirs.sort()
        yield describe(directory, "/" + relative_dir)
        # os.walk lists links to directories among the directories, and does not follow them.
        for name in sorted(
            files + [d for d in subdirs if os.path.islink(os.path.join(directory, d))]
        ):
            relative = os.path.join(relative_dir, name)
            if not is_push_state(relative):
                yield describe(os.path.join(directory, name), "/" + relative)


def read_lines(relative: str) -> list[str]:
    try:
        with open(path_of(relative), encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def login_homes() -> list[str]:
    """Homes of accounts with a login shell (root's included): shell history lives there."""
    shells = {line.strip() for line in read_lines("etc/shells") if line.startswith("/")}
    homes = {"root"}
    for line in read_lines("etc/passwd"):
        fields = line.split(":")
        if len(fields) >= 7 and fields[6] in shells:
            home = fields[5].strip("/")
            if home and not home.startswith(TREES):
                homes.add(home)
    return sorted(homes)


def run_lines(argv: list[str]) -> list[str]:
    """``rc=N`` then the command's output lines (a command that cannot run is a fact too)."""
    if ROOT != "/":
        return ["(not run outside /)"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"(cannot run: {exc.__class__.__name__})"]
    return [f"rc={done.returncode}", *(line for line in done.stdout.splitlines() if line.strip())]


def restless(unit: str) -> bool:
    return unit.startswith(RESTLESS_UNIT_PREFIXES) or (
        unit.startswith(RESTLESS_SERVICES) and unit.endswith(".service")
    )


# A unit in one of these states is between two steady states (a handler's restart or a
# reload still running under load): the probe waits for it rather than record a passing moment.
SETTLING_STATES = ("activating", "deactivating", "reloading", "refreshing")
SETTLE_TRIES = 30
SETTLE_PAUSE_SECONDS = 0.5


def unit_lines() -> list[str]:
    """Every unit file's state (enabled, masked, ...) and the live state of the enabled ones."""
    lines = []
    listing = run_lines(["systemctl", "list-unit-files", "--no-legend", "--no-pager", "--plain"])
    enabled = []
    for line in listing[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1] != "transient" and not restless(fields[0]):
            lines.append(f"file {fields[0]} {fields[1]}")
            if fields[1] == "enabled" and not fields[0].endswith("@.service"):
                enabled.append(fields[0])
    if enabled:
        for name, state in zip(
            enabled, run_lines(["systemctl", "is-active", *enabled])[1:], strict=False
        ):
            lines.append(f"active {name} {state}")
    # Instances of templates (wg-quick@wg0) are not unit files: ask for the running ones.
    running = run_lines(
        [
            "systemctl",
            "list-units",
            "--no-legend",
            "--no-pager",
            "--plain",
            "--type=service,timer,socket",
        ]
    )
    for line in running[1:]:
        fields = line.split()
        if len(fields) >= 4 and "@" in fields[0] and not restless(fields[0]):
            lines.append(instance_line(fields[0], fields[2], fields[3]))
    return lines


def instance_line(unit: str, active: str, sub: str) -> str:
    if unit.endswith(".timer"):
        # A timer's sub-state reads "running" while the service it fired runs (the peer
        # watch, every few seconds) and "waiting" otherwise: armed either way.
        return f"instance {unit} {active}"
    return f"instance {unit} {active} {sub}"


def settling(lines: list[str]) -> bool:
    """Is any unit (``file|active|instance NAME STATE...``) between two steady states?"""
    return any(word in SETTLING_STATES for line in lines for word in line.split()[2:])


def units() -> Iterator[str]:
    """The unit lines once no unit is between states (or after SETTLE_TRIES reads)."""
    lines = unit_lines()
    for _ in range(SETTLE_TRIES):
        if not settling(lines):
            break
        time.sleep(SETTLE_PAUSE_SECONDS)
        lines = unit_lines()
    yield from lines


def sysctl_keys() -> list[str]:
    keys = set()
    for directory in ("etc/sysctl.d", "usr/lib/sysctl.d", "run/sysctl.d"):
        try:
            names = sorted(os.listdir(path_of(directory)))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(path_of(directory), name), encoding="utf-8") as handle:
                    for line in handle:
                        line = line.strip()
                        if line and not line.startswith(("#", ";")) and "=" in line:
                            keys.add(line.split("=", 1)[0].strip().lstrip("-"))
            except OSError:
                continue
    return sorted(keys)


def sysctls() -> Iterator[str]:
    for key in sysctl_keys():
        if "*" in key:
            continue
        try:
            with open(path_of("proc/sys/" + key.replace(".", "/")), encoding="utf-8") as handle:
                value = " ".join(handle.read().split())
        except OSError:
            value = "(absent)"
        yield f"{key} = {value}"


def dynamic_debug() -> Iterator[str]:
    control = path_of("sys/kernel/debug/dynamic_debug/control")
    try:
        with open(control, encoding="utf-8") as handle:
            on = sum(1 for line in handle if "[wireguard]" in line and " =p" in line)
    except OSError:
        yield "control absent"
        return
    yield f"wireguard messages on: {on}"


def tree_section(tree: str, line: str) -> str:
    """``/etc/ssh/sshd_config ...`` -> ``/etc/ssh``: the top two levels of the entry's parent."""
    parent = os.path.dirname(line.split(" ", 1)[0])
    return max("/" + tree, "/".join(parent.split("/")[:3]), key=len)


def sections() -> Iterator[tuple[str, str]]:
    for tree in TREES:
        for line in walk(tree):
            yield tree_section(tree, line), line
    for home in login_homes():
        for line in walk(home, HOME_DEPTH):
            yield "homes", line
    yield "packages", describe(path_of("var/lib/dpkg/status"), "/var/lib/dpkg/status")
    for line in units():
        yield "units", line
    for line in sysctls():
        yield "sysctl", line
    for line in dynamic_debug():
        yield "dynamic_debug", line
    for line in run_lines(["nft", "--stateless", "list", "ruleset"]):
        yield "nftables", line
    for line in run_lines(["wg", "show", "all", "listen-port"]):
        yield "wireguard", "listen-port " + line
    for line in run_lines(["wg", "show", "all", "public-key"]):
        yield "wireguard", "public-key " + line
    for line in run_lines(["sshd", "-T"]):
        yield "sshd", line


def main() -> None:
    out = sys.stdout
    for section, line in sections():
        out.write(f"{section}\t{line}\n")


if __name__ == "__main__":
    main()
