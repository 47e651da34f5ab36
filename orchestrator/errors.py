"""The exception hierarchy and the exit codes they map to.

Every error a user can cause or fix derives from :class:`WgfleetError`; the CLI prints its message
on one line and exits with its ``exit_code``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum

from orchestrator.core.quoting import quote, sanitize


class ExitCode(IntEnum):
    """Stable, documented process exit codes shared by every command."""

    OK = 0
    FAILED = 1  # the operation ran but some node or step failed (named on stderr)
    USAGE = 2  # bad arguments, bad settings file or bad input file: nothing was touched
    BUSY = 3  # another run holds the fleet lock
    ENVIRONMENT = 4  # the machine lacks something: root, a tool, a kernel feature
    INTERRUPTED = 130  # stopped by Ctrl-C / SIGINT
    PIPE_CLOSED = 141  # the reader of stdout went away (`| head`): 128 + SIGPIPE, as a shell says


class WgfleetError(Exception):
    """Base of every error that is the user's to read and fix."""

    exit_code: ExitCode = ExitCode.FAILED


class ConfigError(WgfleetError):
    """A settings or input file is wrong: names the file (and the line when known), the
    field and the value, quoted safely (control and bidi characters escaped, long values cut).
    """

    exit_code = ExitCode.USAGE

    def __init__(
        self, source: str, field: str, value: object, problem: str, *, line: int | None = None
    ) -> None:
        self.source = source
        self.field = field
        self.value = value
        self.problem = problem
        self.line = line
        where = sanitize(source, 300) + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {sanitize(field, 200)}: {quote(value)}: {problem}")

    def at_line(self, line: int | None) -> ConfigError:
        """The same error naming ``line`` (a loader that knows where the field was written)."""
        return ConfigError(self.source, self.field, self.value, self.problem, line=line)


class UsageError(WgfleetError):
    """A command was called with arguments that cannot work."""

    exit_code = ExitCode.USAGE


class EnvironmentProblem(WgfleetError):
    """The machine cannot do what was asked (not root, a tool missing, ...)."""

    exit_code = ExitCode.ENVIRONMENT


class StoreError(WgfleetError):
    """The quota store refused a change or cannot be used (schema, connection, constraint)."""


class StoreConflict(StoreError):
    """Two writers collided (a deadlock or serialization failure): nothing was written, and
    the same transaction may simply run again."""


class StoreUnreachable(StoreError):
    """The store's server cannot be used (down, wrong password, no such database): a fault of
    the machine's surroundings, named by server and database, never with the password."""

    exit_code = ExitCode.ENVIRONMENT


class NotFound(StoreError):
    """A name given by the user (account, configuration, plan, node) is not in the store."""

    exit_code = ExitCode.USAGE


class Cancelled(WgfleetError):
    """The operator stopped a run at a safe point; what the message says was not done."""

    exit_code = ExitCode.INTERRUPTED


class FleetBusy(WgfleetError):
    """Another run holds the fleet lock."""

    exit_code = ExitCode.BUSY


class CapacityExhausted(WgfleetError):
    """A pool ran out (tunnel addresses, IPv6 networks): nothing was written; the fleet needs
    a larger network or fewer configurations."""


class ProtocolViolation(WgfleetError):
    """A node answered outside the node protocol: its answer was not used."""


class LabError(WgfleetError):
    """Building, starting or stopping the lab fleet failed."""


class NodeError(WgfleetError):
    """Something failed on one named node."""

    def __init__(self, node: str, message: str) -> None:
        self.node = node
        super().__init__(f"{node}: {message}")


class NodeUnreachable(NodeError):
    """The node did not answer (down, network, timeout)."""


class HostKeyError(NodeError):
    """The node's SSH host key is unknown or differs from the pinned one."""


def _trust_hint(node: str, offered: str) -> str:
    return (
        f"check {offered} on the node's console, then pin it: "
        f"wgfleet nodes trust {node} --fingerprint {offered}"
    )


class UnknownHostKey(HostKeyError):
    """First contact: nothing is pinned for the node, so nothing it offers is trusted."""

    def __init__(self, node: str, name: str, pins: str, offered: str) -> None:
        self.offered = offered
        super().__init__(
            node,
            f"no pinned host key for {name} in {pins}; it offers {offered}; refusing to "
            f"connect (first contact: {_trust_hint(node, offered)})",
        )


class ChangedHostKey(HostKeyError):
    """The node offers a key other than the one(s) pinned for it."""

    def __init__(self, node: str, address: str, pins: str, pinned: list[str], offered: str):
        self.pinned = pinned
        self.offered = offered
        super().__init__(
            node,
            f"host key changed: {pins} pins {', '.join(pinned)}, the node at {address} offered "
            f"{offered}; refusing to connect (if the change is yours: "
            f"{_trust_hint(node, offered)})",
        )


class AuthenticationFailed(NodeError):
    """The node refused the controller's key."""


class RemoteCommandFailed(NodeError):
    """A command on the node exited non-zero."""

    def __init__(self, node: str, command: str, status: int, stderr: str) -> None:
        self.command = command
        self.status = status
        self.stderr = stderr
        # The node's own words, which a tampered node chooses: one line, escaped, cut.
        first = stderr.strip().splitlines()[-1] if stderr.strip() else "no output on stderr"
        first = sanitize(first, 300)
        super().__init__(node, f"`{command}` exited {status}: {first}")
