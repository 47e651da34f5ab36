"""The machine a benchmark runs on, seen from its parent: its load, its memory and PIDs, the
processes of a namespace, and cases run as child processes that talk in JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, ClassVar

from orchestrator.adapters.lab import network

KEEP_FREE_MEMORY_KB = 4 << 20
KEEP_FREE_TASKS = 0.1  # of pid_max
KEPT_STEP = 500  # the kept case's node count is rounded down to a multiple of this


def status_kb(field: str, path: str = "/proc/self/status") -> int:
    with open(path, encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(f"{field}:"))


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries it across fork and
    exec, so a case process started by a parent of 500 MB reported 500 MB whatever it used."""
    return status_kb("VmHWM") / 1024


class Child:
    """A case's process; it talks in JSON lines (the last one: its own measurement)."""

    started: ClassVar[list[Child]] = []

    def __init__(self, module: str, case: str, *arguments: str) -> None:
        self.case = case
        self.errors: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in finish
        argv = [sys.executable, "-m", module, "--child", case, *arguments]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True
        )
        Child.started.append(self)

    @classmethod
    @contextmanager
    def reaped(cls) -> Iterator[None]:
        """After the block, also after a failure, no case process outlives it (each killed by
        its PID, only those started here)."""
        try:
            yield
        finally:
            for child in cls.started:
                if child.process.poll() is None:
                    child.process.kill()
                    child.process.wait()
            cls.started.clear()

    def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        if not text:
            self.process.wait()
            self.errors.seek(0)
            raise SystemExit(f"case {self.case} failed: {self.errors.read()[-2000:]}")
        return dict(json.loads(text))

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def finish(self) -> dict[str, Any]:
        figures = self.line()
        self.process.wait()
        self.errors.close()
        return figures


def _cpu_ticks() -> tuple[int, int]:
    """(busy, all) jiffies of every CPU since boot; waiting on I/O counts as busy (a store's
    checkpoint still writing is the previous case's work)."""
    with open("/proc/stat", encoding="ascii") as handle:
        ticks = [int(field) for field in handle.readline().split()[1:]]
    return sum(ticks) - ticks[3], sum(ticks)


def cpu_busy(seconds: float) -> float:
    """The share of the machine's CPU time busy over the next ``seconds``."""
    busy, total = _cpu_ticks()
    time.sleep(seconds)
    busy_after, total_after = _cpu_ticks()
    return (busy_after - busy) / max(1, total_after - total)


def settle(busy_below: float, cap: float, window: float = 3.0) -> tuple[float, float]:
    """Wait (at most ``cap`` s) until the CPUs were busy less than ``busy_below`` of a
    ``window``; return the 1-minute load average and that share at the end.

    Not the load average itself: it decays by a factor e a minute, so after a case that ran
    30 threads it stays above 1 for three minutes of an idle machine."""
    deadline = time.monotonic() + cap
    busy = cpu_busy(window)
    while busy >= busy_below and time.monotonic() < deadline:
        busy = cpu_busy(window)
    return round(os.getloadavg()[0], 2), round(busy, 3)


def namespace_memory(netns: str) -> tuple[int, float]:
    """Processes in a network namespace and their summed proportional set size (MB)."""
    pids = network.netns_pids(netns)
    pss = 0
    for pid in pids:
        try:
            pss += status_kb("Pss", f"/proc/{pid}/smaps_rollup")
        except (OSError, StopIteration):
            continue  # gone meanwhile
    return len(pids), pss / 1024


def tasks_running() -> int:
    """Processes and threads on the machine: each takes a PID of pid_max."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue  # gone meanwhile
    return count


def kept_size(wanted: int, probe: dict[str, Any], reserve_kb: float) -> tuple[int, str]:
    """How many of ``wanted`` kept sessions leave KEEP_FREE_* of the machine free, and why:
    the sessions that fit pid_max and the memory, by the probe's figures per session."""
    with open("/proc/sys/kernel/pid_max", encoding="ascii") as handle:  # 32768 here
        pid_max = int(handle.read())
    tasks = probe["sshd_processes_per_session"] + probe["threads_per_session"]
    by_tasks = int((pid_max * (1 - KEEP_FREE_TASKS) - tasks_running()) / tasks)
    per_kb = max(probe["memory_kb_per_session"],
                 probe["sshd_kb_per_session"] + probe["controller_kb_per_session"])  # fmt: skip
    free_kb = status_kb("MemAvailable", "/proc/meminfo") - KEEP_FREE_MEMORY_KB - reserve_kb
    by_memory = int(free_kb / per_kb)
    why = f"{by_tasks} sessions fit pid_max {pid_max}, {by_memory} the memory"
    if min(by_tasks, by_memory) >= wanted:
        return wanted, why
    return max(KEPT_STEP, min(by_tasks, by_memory) // KEPT_STEP * KEPT_STEP), why
