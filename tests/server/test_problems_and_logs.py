"""Errors as problem details mapped in one place, and a server that writes no client address."""

from __future__ import annotations

import inspect
import logging

import pytest

import orchestrator.errors
from orchestrator.errors import FleetBusy, NotFound, StoreUnreachable, UsageError, WgfleetError
from orchestrator.server.problems import STATUS_OF, error_problem
from orchestrator.server.run import LOG_CONFIG, Listener, uvicorn_config
from orchestrator.service.peers import TopUpConflict
from tests.server.calls import CALLS
from tests.server.conftest import Running, serve_app, stop


def kinds_in_errors_module() -> list[type[WgfleetError]]:
    return [
        k
        for _, k in inspect.getmembers(orchestrator.errors, inspect.isclass)
        if issubclass(k, WgfleetError)
    ]


def test_every_error_kind_has_its_own_status_and_title() -> None:
    kinds = [*kinds_in_errors_module(), TopUpConflict]
    assert [k.__name__ for k in kinds if k not in STATUS_OF] == []


@pytest.mark.parametrize(
    ("error", "status", "exit_code"),
    [
        (UsageError("bad"), 400, 2),
        (NotFound("no configuration 'x'"), 404, 2),
        (TopUpConflict("invoice INV-1 was recorded before"), 409, 2),
        (FleetBusy("held"), 503, 3),
        (StoreUnreachable("down"), 503, 4),
        (WgfleetError("failed"), 500, 1),
    ],
)
def test_a_problem_carries_the_clis_message_and_exit_code(
    error: WgfleetError, status: int, exit_code: int
) -> None:
    document = error_problem(error)
    assert (document["status"], document["exit_code"], document["detail"]) == (
        status,
        exit_code,
        str(error),
    )
    assert document["exit_code"] == int(error.exit_code)
    assert document["type"].startswith("https://wgfleet.invalid/problems/")


def test_uvicorn_runs_without_an_access_log_or_proxy_headers() -> None:
    config = uvicorn_config(object(), Listener("127.0.0.1", 8787))
    assert config.access_log is False
    assert config.proxy_headers is False
    assert config.log_config is LOG_CONFIG
    access = LOG_CONFIG["loggers"]["uvicorn.access"]
    assert (access["handlers"], access["propagate"]) == ([], False)
    assert LOG_CONFIG["loggers"]["uvicorn"]["level"] == "WARNING"


def test_tls_needs_both_files_and_names_a_missing_one(tmp_path: object) -> None:
    with pytest.raises(UsageError, match="give both --tls-cert and --tls-key"):
        uvicorn_config(object(), Listener("127.0.0.1", 8787, tls_cert="/x"))
    with pytest.raises(UsageError, match=r"--tls-cert /nonexistent/cert\.pem: no such file"):
        uvicorn_config(object(), Listener("127.0.0.1", 8787, "/nonexistent/cert.pem", "/k"))


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_a_run_of_the_server_logs_no_client_address(
    running: Running, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every endpoint, good and bad tokens, a 404 and a too-large body: nothing any logger
    or the process's stdout and stderr said names the client's address."""
    seen = Everything()
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "starlette"]
    loggers = [logging.getLogger(n) for n in names]
    for logger in loggers:
        logger.addHandler(seen)
    try:
        _, served = serve_app(running.settings)
        try:
            for token in running.tokens.values():
                for call in CALLS.values():
                    with running.client(token) as client:
                        client.base_url = served.url
                        call(client)
            with running.client("wgf_0000000000000000_" + "A" * 43) as client:
                client.base_url = served.url
                client.get("/v1/plans")
                client.get("/v1/nowhere")
                client.post("/v1/accounts", content=b"x" * 70_000)
        finally:
            stop(served)
    finally:
        for logger in loggers:
            logger.removeHandler(seen)
    out, err = capfd.readouterr()
    said = "\n".join(seen.lines) + out + err
    assert "127.0.0.1" not in said
    assert not any("HTTP/1.1" in line for line in seen.lines)
