"""Run the API under uvicorn with nothing that holds a client address in its logs.

uvicorn's access log is off, its access logger has no handler and does not propagate, and its
own loggers speak from WARNING up only (their INFO lines name connections); proxy headers
are not read, so no forwarded client address enters the process either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from orchestrator.errors import UsageError
from orchestrator.server.app import create_app
from orchestrator.service.metrics import FleetMetrics, render
from orchestrator.service.push_worker import PushWorker
from orchestrator.settings import Settings

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "wgfleet serve: %(levelname)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        # Never a line per request, wherever the root logger points.
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}


@dataclass(frozen=True)
class Listener:
    """Where the API listens, and its TLS certificate and key when it speaks TLS itself."""

    host: str
    port: int
    tls_cert: str | None = None
    tls_key: str | None = None


def _tls_file(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")
    return path


def uvicorn_config(app: Any, listener: Listener) -> uvicorn.Config:
    """uvicorn's settings for the API: no access log, no proxy headers, TLS when given."""
    if (listener.tls_cert is None) != (listener.tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    return uvicorn.Config(
        app,
        host=listener.host,
        port=listener.port,
        access_log=False,
        log_config=LOG_CONFIG,
        proxy_headers=False,
        server_header=False,
        ssl_certfile=_tls_file(listener.tls_cert, "--tls-cert"),
        ssl_keyfile=_tls_file(listener.tls_key, "--tls-key"),
        timeout_keep_alive=5,
    )


@contextmanager
def api_with_pushes(settings: Settings) -> Iterator[FastAPI]:
    """The API as `wgfleet serve` runs it: writes answer once committed and a push worker,
    woken by each write, takes them to the nodes; /metrics holds the store's gauges and the
    pushes this process made. The worker stops when the block ends."""
    observed = FleetMetrics(settings)
    worker = PushWorker(settings, observer=observed)
    app = create_app(
        settings,
        after_write=lambda _pending: worker.wake(),
        metrics=partial(render, observed),
        observer=observed,
    )
    worker.start()
    try:
        yield app
    finally:
        worker.stop(timeout=60)


def serve(settings: Settings, listener: Listener) -> None:
    """Serve until stopped (SIGINT or SIGTERM end it cleanly)."""
    with api_with_pushes(settings) as app:
        uvicorn.Server(uvicorn_config(app, listener)).run()
