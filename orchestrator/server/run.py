"""Run the API under uvicorn with nothing that holds a client address in its logs.

uvicorn's access log is off, its access logger has no handler and does not propagate, and its
own loggers speak from WARNING up only (their INFO lines name connections); proxy headers
are not read, so no forwarded client address enters the process either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import uvicorn

from orchestrator.errors import UsageError
from orchestrator.server.app import create_app
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


def _tls_file(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")
    return path


def uvicorn_config(
    app: Any,
    host: str,
    port: int,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> uvicorn.Config:
    """uvicorn's settings for the API: no access log, no proxy headers, TLS when given."""
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=LOG_CONFIG,
        proxy_headers=False,
        server_header=False,
        ssl_certfile=_tls_file(tls_cert, "--tls-cert"),
        ssl_keyfile=_tls_file(tls_key, "--tls-key"),
        timeout_keep_alive=5,
    )


def serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> None:
    """Serve until stopped (SIGINT or SIGTERM end it cleanly)."""
    config = uvicorn_config(create_app(settings), host, port, tls_cert=tls_cert, tls_key=tls_key)
    uvicorn.Server(config).run()
