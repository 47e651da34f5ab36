"""SSH to nodes with paramiko, trusting only host keys pinned in the fleet's known_hosts.

There is no trust-on-first-use: an unknown or changed host key aborts the connection to that node
with an error naming it. Keys are never learned or written back by this module.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paramiko

from orchestrator.core.inventory import key_fingerprint
from orchestrator.errors import (
    AuthenticationFailed,
    HostKeyError,
    NodeUnreachable,
    RemoteCommandFailed,
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


@dataclass(frozen=True)
class CommandResult:
    status: int
    stdout: str
    stderr: str


def fingerprint(key: paramiko.PKey) -> str:
    return key_fingerprint(key.get_base64())


def _known_host_name(target: Target) -> str:
    return target.address if target.port == 22 else f"[{target.address}]:{target.port}"


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
        client = paramiko.SSHClient()
        try:
            # get_host_keys().load() reads without remembering the file, so nothing is written back.
            client.get_host_keys().load(str(target.known_hosts))
        except FileNotFoundError:
            raise HostKeyError(
                target.name, f"no pinned known_hosts file at {target.known_hosts}"
            ) from None
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
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
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyError(
                target.name,
                f"host key changed: {target.known_hosts} pins {fingerprint(exc.expected_key)}, "
                f"the node at {target.address} offered {fingerprint(exc.key)}; refusing to connect",
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise AuthenticationFailed(
                target.name, f"refused key {target.key_file} for user {target.user}"
            ) from None
        except paramiko.SSHException as exc:
            client.close()
            if "known_hosts" in str(exc):
                raise HostKeyError(
                    target.name,
                    f"no pinned host key for {_known_host_name(target)} in {target.known_hosts}; "
                    "refusing to connect",
                ) from None
            raise NodeUnreachable(target.name, f"SSH failed: {exc}") from None
        except TimeoutError:
            client.close()
            raise NodeUnreachable(
                target.name,
                f"no answer from {target.address}:{target.port} in {target.timeout:.0f} s",
            ) from None
        except OSError as exc:
            client.close()
            raise NodeUnreachable(
                target.name, f"cannot reach {target.address}:{target.port}: {exc.strerror or exc}"
            ) from None
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

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


def run_on(
    target: Target, argv: Sequence[str] | str, *, check: bool = True, timeout: float = 60.0
) -> CommandResult:
    """Connect, run one command, disconnect."""
    with NodeConnection(target) as connection:
        return connection.run(argv, check=check, timeout=timeout)
