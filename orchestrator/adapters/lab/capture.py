"""Packet captures on a lab namespace's link (a client's underlay ``eth0``, usually): tcpdump
started before and stopped after the traffic a test makes, returning what crossed as parsed
packets, so a test can assert "nothing but WireGuard UDP to the endpoint" or "which address
asked which name".

tcpdump runs as our child in the namespace (``ip netns exec`` execs it: its PID is ours to
stop), decodes with ``-n -tt`` into a file of the lab's, and is stopped with SIGINT so it
flushes everything it saw. A capture counts as started once tcpdump says it is listening.

Stopping is synchronised, not timed: for a link on the lab bridge the host sends one marker
datagram to the link's all-nodes group (``ff02::1``, a random port: nobody answers a multicast
datagram) and tcpdump is stopped only once it printed that marker, so every packet that crossed
before it is in the result; the marker itself is left out. Without a bridge (a tunnel
interface) tcpdump's own counters must show that it printed every packet it received.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from orchestrator.core.packets import Packet, parse_tcpdump_lines
from orchestrator.errors import LabError

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
MARK = b"wgfleet capture mark"
MARK_PORTS = (40000, 60000)


class Capture:
    """One running tcpdump; :meth:`stop` ends it and returns the packets."""

    def __init__(
        self,
        netns: str,
        interface: str,
        output: Path,
        bpf_filter: str = "",
        bridge: str | None = None,
    ) -> None:
        self.netns, self.interface, self.output, self.bridge = netns, interface, output, bridge
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

    def _mark(self) -> int | None:
        """Send the marker from the host onto the bridge; wait until tcpdump printed it.
        Returns its port, or None when there is no bridge or it never showed."""
        if self.bridge is None or self._process.poll() is not None:
            return None
        port = MARK_PORTS[0] + secrets.randbelow(MARK_PORTS[1] - MARK_PORTS[0])
        seen = re.compile(rf" > ff02::1\.{port}: UDP")
        index = socket.if_nametoindex(self.bridge)
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.sendto(MARK, ("ff02::1", port, 0, index))
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and self._process.poll() is None:
            if seen.search(self.output.read_text(encoding="utf-8", errors="replace")):
                return port
            time.sleep(0.01)
        return None

    def stop(self) -> list[Packet]:
        """Stop tcpdump (it flushes on SIGINT) and return every packet it printed."""
        mark = self._mark()
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
        packets = parse_tcpdump_lines(text.splitlines())
        if mark is not None:
            # Everything before the marker is in; what came after it is outside the window.
            return [p for p in packets if not (p.dst == "ff02::1" and p.dport == mark)]
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
        return packets


@contextlib.contextmanager
def capturing(
    netns: str,
    output: Path,
    interface: str = "eth0",
    bpf_filter: str = "",
    bridge: str | None = None,
) -> Iterator[list[Packet]]:
    """``with capturing(ns, file, bridge=layout.bridge) as packets: ...``: ``packets`` is
    filled when the block ends; tcpdump is stopped also when the block raises."""
    packets: list[Packet] = []
    capture = Capture(netns, interface, output, bpf_filter, bridge)
    try:
        yield packets
    finally:
        packets.extend(capture.stop())
