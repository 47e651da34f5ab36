"""The one place core's errors become the errors every caller sees.

Core raises ``core.errors.CoreError`` kinds (it knows no exit codes); a caller of the service
layer - the CLI, the TUI, the Python API, a server - sees only ``WgfleetError`` subclasses with
a one-line message and an exit code. The unit of work wraps every session in
:func:`translated`; a use case that runs outside a session (reading a fleet file before the
lock is taken) wraps itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.core.errors import CoreError, Exhausted, InvalidInput, NodeAnswerInvalid, NotReady
from orchestrator.core.quoting import sanitize
from orchestrator.errors import CapacityExhausted, ProtocolViolation, UsageError, WgfleetError


def service_error(error: CoreError) -> WgfleetError:
    """The WgfleetError for a core error: its message on one line, the matching exit code."""
    message = sanitize(str(error).replace("\n", " "), 1000) or type(error).__name__
    if isinstance(error, InvalidInput | NotReady):
        return UsageError(message)
    if isinstance(error, NodeAnswerInvalid):
        return ProtocolViolation(message)
    if isinstance(error, Exhausted):
        return CapacityExhausted(message)
    return WgfleetError(message)


@contextmanager
def translated() -> Iterator[None]:
    """Run the block; a core error leaving it leaves as its WgfleetError (chained to it)."""
    try:
        yield
    except CoreError as error:
        raise service_error(error) from error
