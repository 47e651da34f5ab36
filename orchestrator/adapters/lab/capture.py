"""Packet captures on a lab namespace's link (a client's underlay ``eth0``, usually): tcpdump
started before and stopped after the traffic a test makes, returning what crossed as parsed
packets, so a test can assert "nothing but WireGuard UDP to the endpoint" or "which address
asked which name".

tcpdump runs as our child in the namespace (``ip netns exec`` execs it: its PID is ours to
stop), decodes with ``-n -tt`` into a file of the lab's, and is stopped with SIGINT so it
flushes everything it saw. A capture counts as started once tcpdump says it is listening.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from orchestrator.core.packets import Packet, parse_tcpdump_lines
from orchestrator.errors import LabError

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class Capture:
    """One running tcpdump; :meth:`stop` ends it and returns the packets."""

    def __init__(self, netns: str, interface: str, output: Path, bpf_filter: str = "") -> None:
        self.netns, self.interface, self.output = netns, interface, output
        output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # -l line-buffered, -n no name lookups (they would be traffic of their own), -tt epoch
        # times, -Z root: no change of user (the output is our already open file).
        argv = ["ip", "netns", "exec", netns, "tcpdump", "--immediate-mode", "-l", "-n", "-tt"]
        argv += ["-Z", "root"]
        argv += ["-i", interface, *bpf_filter.split()]
        with open(output, "wb") as sink:
            os.fchmod(sink.fileno(), 0o600)
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        self.pid = self._process.pid
        self._stderr: list[str] = []
        if not self._wait_listening():
            self.stop()
            raise LabError(
                f"tcpdump on {netns} {interface} did not start: {self._stderr[-1:] or 'no output'}"
            )

    def _wait_listening(self) -> bool:
        """Read tcpdump's stderr (raw reads: a buffered reader would hide lines from select)
        until it says it is listening, or exits."""
        stderr = self._process.stderr
        assert stderr is not None
        fd, pending = stderr.fileno(), b""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if not chunk:  # end of file: tcpdump exited
                return False
            *lines, pending = (pending + chunk).split(b"\n")
            self._stderr += [line.decode(errors="replace").strip() for line in lines]
            if any(line.startswith("listening on") for line in self._stderr):
                return True
        return False

    def stop(self) -> list[Packet]:
        """Stop tcpdump (it flushes on SIGINT) and return every packet it printed."""
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr is not None:
            self._stderr += self._process.stderr.read().decode(errors="replace").splitlines()
            self._process.stderr.close()
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        finally:
            self.output.unlink(missing_ok=True)
        # A packet the kernel handed over but tcpdump never printed could be the very leak a
        # test looks for: an incomplete capture is an error, never a shorter list.
        counts = {
            line.split(" packets ", 1)[1]: int(line.split()[0])
            for line in self._stderr
            if " packets " in line and line.split()[0].isdigit()
        }
        received = counts.get("received by filter", 0)
        if counts.get("captured", 0) < received or counts.get("dropped by kernel", 0):
            raise LabError(f"capture on {self.netns} {self.interface} incomplete: {counts}")
        return parse_tcpdump_lines(text.splitlines())


@contextlib.contextmanager
def capturing(
    netns: str, output: Path, interface: str = "eth0", bpf_filter: str = ""
) -> Iterator[list[Packet]]:
    """``with capturing(ns, file) as packets: ...``: ``packets`` is filled when the block
    ends; tcpdump is stopped also when the block raises."""
    packets: list[Packet] = []
    capture = Capture(netns, interface, output, bpf_filter)
    try:
        yield packets
    finally:
        packets.extend(capture.stop())
