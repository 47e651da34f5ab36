"""SSH to nodes with paramiko, trusting only the fleet's pinned host keys (adapters/pins.py).

There is no trust-on-first-use: an unknown or changed host key aborts the connection to that node
with an error naming it, the key it offered and the pinned one. Keys are never learned or
written back by this module; `wgfleet nodes trust` pins a key on the operator's word.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shlex
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypedDict, Unpack

import paramiko

from orchestrator.adapters.pins import KnownHostsPins
from orchestrator.core.inventory import PinnedKey, key_fingerprint, known_host_name
from orchestrator.errors import (
    AuthenticationFailed,
    ChangedHostKey,
    HostKeyError,
    NodeUnreachable,
    RemoteCommandFailed,
    UnknownHostKey,
)


@dataclass(frozen=True)
class Target:
    """Where and as whom to reach one node."""

    name: str
    address: str
    user: str
    key_file: Path
    known_hosts: Path
    port: int = 22
    timeout: float = 10.0
    kex: str = "post-quantum"  # or "curve25519": see prefer_kex


FAST_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")

KEPT_SESSION_POLL_SECONDS = 10.0
"""How often a kept session's transport thread wakes with nothing to read. paramiko's own
0.1 s cost 0.22 cores per 1,000 idle sessions. Data, and the node closing the session, wake the
thread at once; the poll serves only paramiko's keepalives (unused here), its own rekeys (after
gigabytes) and its stop flag, and ``end_transport`` wakes it by shutting the socket instead."""

TRANSPORT_END_WAIT_SECONDS = 10.0
"""How long ``end_transport`` waits for a woken transport thread to finish (it takes a
fraction of a millisecond; the bound is for a machine under heavy load)."""


def prefer_kex(transport: paramiko.Transport, kex: str) -> None:
    """Order the client's key exchange offer; the server picks the first one it shares.

    "curve25519" puts curve25519-sha256 first (about 6x less client CPU than the post-quantum
    hybrid); "post-quantum" keeps paramiko's order, hybrid first, for sessions that carry
    secrets that must outlive a future quantum computer (preshared keys).
    """
    if kex != "curve25519":
        return
    options = transport.get_security_options()
    offered = tuple(options.kex)
    fast = tuple(name for name in FAST_KEX if name in offered)
    options.kex = fast + tuple(name for name in offered if name not in fast)


@dataclass(frozen=True)
class CommandResult:
    status: int
    stdout: str
    stderr: str


def fingerprint(key: paramiko.PKey) -> str:
    return key_fingerprint(key.get_base64())


def _known_host_name(target: Target) -> str:
    return known_host_name(target.address, target.port)


def pins_of(target: Target) -> list[PinnedKey]:
    """What the fleet pins for ``target`` (empty: nothing, a first contact).

    A missing pin file is refused at once, before any packet is sent.
    """
    try:
        return KnownHostsPins(target.known_hosts).lookup(_known_host_name(target))
    except FileNotFoundError:
        raise HostKeyError(
            target.name,
            f"no pinned known_hosts file at {target.known_hosts}; refusing to connect (pin "
            f"each node: wgfleet nodes trust {target.name} shows the key it offers)",
        ) from None


def verify_host_key(target: Target, pins: list[PinnedKey], offered: paramiko.PKey) -> None:
    """Accept ``offered`` only if it is one of ``pins``; else name the node and both keys."""
    blob = offered.get_base64()
    if any(pin.key_base64 == blob for pin in pins):
        return
    if not pins:
        raise UnknownHostKey(
            target.name, _known_host_name(target), str(target.known_hosts), fingerprint(offered)
        )
    raise ChangedHostKey(
        target.name,
        target.address,
        str(target.known_hosts),
        [pin.fingerprint for pin in pins],
        fingerprint(offered),
    )


class _PinnedOnly(paramiko.MissingHostKeyPolicy):
    """paramiko asks this policy about every key (it is given none of its own): the key is
    accepted only if pinned, and nothing is ever written back."""

    def __init__(self, target: Target, pins: list[PinnedKey]) -> None:
        self.target = target
        self.pins = pins

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        verify_host_key(self.target, self.pins, key)


def _prefer_pinned_types(transport: paramiko.Transport, pins: list[PinnedKey]) -> None:
    """Ask the node for the key type that is pinned (as OpenSSH does), so a node that also
    has other host keys is not mistaken for a changed one."""
    wanted: list[str] = []
    for pin in pins:
        names = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if pin.key_type == "ssh-rsa" else []
        wanted += [*names, pin.key_type]
    options = transport.get_security_options()
    offered = tuple(options.key_types)
    first = tuple(dict.fromkeys(name for name in wanted if name in offered))
    options.key_types = first + tuple(name for name in offered if name not in first)


def _new_transport(
    target: Target, pins: list[PinnedKey], sock: object, *args: object, **kwargs: object
) -> paramiko.Transport:
    if isinstance(sock, socket.socket):
        # Small SSH packets otherwise wait on Nagle + delayed ACK: measured 50 ms per
        # exec on a lab node, 16 ms with it off; a connection 183 -> 63 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    made = paramiko.Transport(sock, *args, **kwargs)  # type: ignore[arg-type]
    prefer_kex(made, target.kex)
    _prefer_pinned_types(made, pins)
    return made


def end_transport(transport: paramiko.Transport) -> None:
    """Close ``transport`` once its thread has ended.

    paramiko's close() closes the socket while the thread may still sit in poll() on it (up to
    its poll period), and that thread's next recv() then reads whatever socket was given the
    same descriptor number meanwhile: another node's session, in a sync that opens sessions on
    32 threads. Shutting the socket down first wakes the thread with end-of-file; it closes the
    socket itself and ends, and only then does close() run.
    """
    if transport.is_alive() and transport is not threading.current_thread():
        # An OSError: already closed, or never connected; there is nothing to wake.
        with contextlib.suppress(OSError):
            transport.sock.shutdown(socket.SHUT_RDWR)
        transport.join(TRANSPORT_END_WAIT_SECONDS)
    transport.close()


def _unreachable(target: Target, exc: BaseException) -> NodeUnreachable:
    if isinstance(exc, TimeoutError):
        return NodeUnreachable(
            target.name, f"no answer from {target.address}:{target.port} in {target.timeout:.0f} s"
        )
    if isinstance(exc, paramiko.SSHException):
        return NodeUnreachable(target.name, f"SSH failed: {exc}")
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return NodeUnreachable(target.name, f"cannot reach {target.address}:{target.port}: {detail}")


def _handshake(target: Target, pins: list[PinnedKey]) -> paramiko.PKey:
    """The host key the node offers, after a key exchange and before any authentication."""
    sock: socket.socket | None = None
    transport: paramiko.Transport | None = None
    try:
        sock = socket.create_connection((target.address, target.port), timeout=target.timeout)
        # Nothing secret crosses this session: the cheap key exchange will do.
        transport = _new_transport(dataclasses.replace(target, kex="curve25519"), pins, sock)
        transport.banner_timeout = target.timeout
        transport.start_client(timeout=target.timeout)
        return transport.get_remote_server_key()
    except (OSError, paramiko.SSHException) as exc:
        raise _unreachable(target, exc) from None
    finally:
        if transport is not None:
            end_transport(transport)
        elif sock is not None:
            sock.close()


def check_host_key(target: Target) -> None:
    """Refuse ``target`` (HostKeyError naming the node and the keys) unless the key it offers
    now is pinned; NodeUnreachable if it does not answer. No login is attempted."""
    pins = pins_of(target)
    verify_host_key(target, pins, _handshake(target, pins))


def offered_host_key(target: Target) -> tuple[str, str]:
    """(key type, base64) of the host key ``target`` offers, trusting nothing: for an operator
    to compare with the node's console before pinning it."""
    try:
        pins = pins_of(target)
    except HostKeyError:
        pins = []
    key = _handshake(target, pins)
    return key.get_name(), key.get_base64()


class NodeConnection:
    """One authenticated SSH session to one node; use as a context manager."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._client: paramiko.SSHClient | None = None

    def __enter__(self) -> NodeConnection:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        target = self.target
        pins = pins_of(target)
        client = paramiko.SSHClient()
        # paramiko gets no host keys of its own: every key it sees goes to the pin check.
        client.set_missing_host_key_policy(_PinnedOnly(target, pins))
        try:
            client.connect(
                target.address,
                port=target.port,
                username=target.user,
                key_filename=str(target.key_file),
                timeout=target.timeout,
                banner_timeout=target.timeout,
                auth_timeout=target.timeout,
                allow_agent=False,
                look_for_keys=False,
                transport_factory=functools.partial(_new_transport, target, pins),
            )
        except HostKeyError:
            client.close()
            raise
        except paramiko.AuthenticationException:
            client.close()
            raise AuthenticationFailed(
                target.name, f"refused key {target.key_file} for user {target.user}"
            ) from None
        except (OSError, paramiko.SSHException) as exc:
            client.close()
            raise _unreachable(target, exc) from None
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            transport = self._client.get_transport()
            if transport is not None:
                end_transport(transport)
            self._client.close()
            self._client = None

    @property
    def transport(self) -> paramiko.Transport | None:
        return self._client.get_transport() if self._client is not None else None

    @property
    def alive(self) -> bool:
        transport = self.transport
        return transport is not None and transport.is_active()

    def poll_idle_every(self, seconds: float) -> None:
        """Let the transport thread sleep ``seconds`` between checks while nothing arrives
        (see KEPT_SESSION_POLL_SECONDS): for a session kept open between runs."""
        transport = self.transport
        if transport is not None and isinstance(transport.sock, socket.socket):
            transport.sock.settimeout(seconds)

    def run(
        self,
        argv: Sequence[str] | str,
        *,
        check: bool = True,
        timeout: float = 60.0,
        stdin: str | None = None,
    ) -> CommandResult:
        """Run a command (an argv list is quoted for the remote shell) and collect its output."""
        if self._client is None:
            self.connect()
        assert self._client is not None
        command = argv if isinstance(argv, str) else shlex.join(argv)
        try:
            channel_in, channel_out, channel_err = self._client.exec_command(
                command, timeout=timeout
            )
            if stdin is not None:
                channel_in.write(stdin)
            channel_in.channel.shutdown_write()
            stdout = channel_out.read().decode("utf-8", errors="replace")
            stderr = channel_err.read().decode("utf-8", errors="replace")
            status = channel_out.channel.recv_exit_status()
        except TimeoutError:
            raise NodeUnreachable(
                self.target.name, f"`{command}` gave no answer within {timeout:.0f} s"
            ) from None
        except paramiko.SSHException as exc:
            raise NodeUnreachable(self.target.name, f"SSH session failed: {exc}") from None
        if check and status != 0:
            raise RemoteCommandFailed(self.target.name, command, status, stderr)
        return CommandResult(status=status, stdout=stdout, stderr=stderr)


class CommandOptions(TypedDict, total=False):
    """How long a command may take and what it reads: for wrappers that decide ``check``."""

    timeout: float
    stdin: str | None


class RunOptions(CommandOptions, total=False):
    """NodeConnection.run's keywords, passed through by the callers that wrap it."""

    check: bool


def run_on(
    target: Target, argv: Sequence[str] | str, **options: Unpack[RunOptions]
) -> CommandResult:
    """Connect, run one command, disconnect."""
    with NodeConnection(target) as connection:
        return connection.run(argv, **options)


class ConnectionPool:
    """Open sessions kept per (node, user), so a long-running controller pays one key exchange
    per node instead of one per run. Thread-safe; a session the node closed meanwhile is
    reopened before use. ``close()`` ends them all; ``close_idle()`` those not used since its
    last call, so sessions to nodes that left the fleet (or went to another controller's share)
    do not pile up in a long-running controller.

    ``limit``: at most this many sessions are kept (each costs the controller about 70 kB and a
    thread, asleep while idle (``idle_poll``), the node two sshd processes); once it is reached,
    other targets get a session for one command, closed after it. The same targets stay kept
    run after run, rather than each evicting the next one needed."""

    def __init__(
        self, limit: int | None = None, idle_poll: float = KEPT_SESSION_POLL_SECONDS
    ) -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"a pool keeps 0 sessions or more, not {limit}")
        self._lock = threading.Lock()
        self._connections: dict[Target, NodeConnection] = {}
        self._used: set[Target] = set()
        self.limit = limit
        self.idle_poll = idle_poll

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)

    def connection(self, target: Target) -> tuple[NodeConnection, bool]:
        """A live session to ``target``, and whether the pool keeps it (else the caller closes
        it after use)."""
        with self._lock:
            self._used.add(target)
            connection = self._connections.get(target)
        if connection is not None and connection.alive:
            return connection, True
        if connection is not None:
            self.discard(target)
        connection = NodeConnection(target)
        connection.connect()
        with self._lock:
            previous = self._connections.get(target)
            room = self.limit is None or len(self._connections) < self.limit
            kept = previous is not None or room
            if kept:
                self._connections[target] = connection
        if previous is not None:
            previous.close()
        if kept:
            connection.poll_idle_every(self.idle_poll)
        return connection, kept

    def run(
        self, target: Target, argv: Sequence[str] | str, **options: Unpack[RunOptions]
    ) -> CommandResult:
        """Run on the kept session to ``target``; a failed session is dropped, not reused."""
        connection, kept = self.connection(target)
        try:
            return connection.run(argv, **options)
        except NodeUnreachable:
            if kept:
                self.discard(target)
            raise
        finally:
            if not kept:
                connection.close()

    def discard(self, target: Target) -> None:
        with self._lock:
            connection = self._connections.pop(target, None)
        if connection is not None:
            connection.close()

    def close_idle(self) -> int:
        """End the sessions not used since the last call; return how many were ended."""
        with self._lock:
            idle = [t for t in self._connections if t not in self._used]
            connections = [self._connections.pop(t) for t in idle]
            self._used = set()
        for connection in connections:
            connection.close()
        return len(connections)

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
            self._used = set()
        for connection in connections:
            connection.close()
