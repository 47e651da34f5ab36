"""Errors as RFC 9457 problem details, mapped from the CLI's errors in one place.

Every ``WgfleetError`` leaves the API as ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` (the one-line message the CLI prints) and ``exit_code`` (the CLI's
exit code for the same error), so a backend can branch on the same meaning either way.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import (
    AuthenticationFailed,
    Cancelled,
    CapacityExhausted,
    ChangedHostKey,
    ConfigError,
    EnvironmentProblem,
    ExitCode,
    FleetBusy,
    HostKeyError,
    LabError,
    NodeError,
    NodeUnreachable,
    NotFound,
    ProtocolViolation,
    RemoteCommandFailed,
    StoreConflict,
    StoreError,
    StoreUnreachable,
    UnknownHostKey,
    UsageError,
    WgfleetError,
)
from orchestrator.service.peers import TopUpConflict

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://wgfleet.invalid/problems/"

# Every WgfleetError kind -> (HTTP status, short title). A subclass not named here takes its
# nearest named ancestor's entry; tests/server checks every kind in orchestrator.errors is named.
STATUS_OF: dict[type[WgfleetError], tuple[int, str]] = {
    WgfleetError: (500, "operation failed"),
    ConfigError: (400, "bad input"),
    UsageError: (400, "bad input"),
    TopUpConflict: (409, "invoice already recorded differently"),
    EnvironmentProblem: (503, "the controller lacks something"),
    StoreError: (409, "the store refused the change"),
    StoreConflict: (409, "concurrent change, try again"),
    StoreUnreachable: (503, "store unreachable"),
    NotFound: (404, "not found"),
    Cancelled: (503, "cancelled"),
    FleetBusy: (503, "the fleet is busy, try again"),
    CapacityExhausted: (507, "address pool exhausted"),
    ProtocolViolation: (502, "a node broke the protocol"),
    LabError: (500, "lab failure"),
    NodeError: (502, "a node failed"),
    NodeUnreachable: (502, "a node is unreachable"),
    HostKeyError: (502, "a node's host key is not trusted"),
    UnknownHostKey: (502, "a node's host key is not pinned"),
    ChangedHostKey: (502, "a node's host key changed"),
    AuthenticationFailed: (502, "a node refused the controller"),
    RemoteCommandFailed: (502, "a command failed on a node"),
}


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def problem(status: int, title: str, detail: str, exit_code: int) -> dict[str, Any]:
    return {
        "type": PROBLEM_BASE + _slug(title),
        "title": title,
        "status": status,
        "detail": detail,
        "exit_code": exit_code,
    }


def error_problem(error: WgfleetError) -> dict[str, Any]:
    """The problem document for a WgfleetError: its kind's status and title, its message."""
    kind = next(k for k in type(error).__mro__ if k in STATUS_OF)
    status, title = STATUS_OF[kind]
    return problem(status, title, str(error), int(error.exit_code))


def http_problem(status: int, detail: str) -> dict[str, Any]:
    """A refusal the server itself makes (authentication, scope, size, routing): the exit
    code a CLI would give the same mistake (bad input) or a busy fleet for 503."""
    titles = {
        401: "unauthorized",
        403: "forbidden",
        404: "not found",
        405: "method not allowed",
        413: "request body too large",
        415: "unsupported media type",
        422: "invalid request",
        503: "unavailable",
    }
    code = ExitCode.BUSY if status == 503 else ExitCode.USAGE
    return problem(status, titles.get(status, "error"), detail, int(code))
