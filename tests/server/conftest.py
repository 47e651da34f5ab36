"""The real server: uvicorn on 127.0.0.1, an ephemeral port, in a thread of this process, over a
seeded SQLite store (tests/tui/conftest.py's fleet: nodes never reached, so every push fails
at once and leaves its node pending). Stopped in the fixture's finalizer, also on failure."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from orchestrator.core.tokens import Scope
from orchestrator.server import create_app
from orchestrator.server.run import Listener, uvicorn_config
from orchestrator.service.context import open_fleet
from orchestrator.service.tokens import add_token
from orchestrator.settings import Settings
from tests.tui.conftest import make_settings, seed

METRICS_BODY = b"# a stand-in exposition: the metrics module is mounted by its own branch\nup 1\n"


@dataclass
class Running:
    """A server under test: its base URL, app, settings, and a token per scope."""

    url: str
    app: FastAPI
    settings: Settings
    tokens: dict[str, str]
    written: list[tuple[str, ...]] = field(default_factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def as_scope(self, scope: str) -> httpx.Client:
        return self.client(self.tokens[scope])


def make_token(settings: Settings, name: str, scopes: list[str], **kw: Any) -> str:
    with open_fleet(settings, write=True) as fleet:
        return add_token(fleet, name, scopes, **kw).text


@dataclass
class Served:
    thread: threading.Thread
    server: uvicorn.Server
    url: str


def start(app: FastAPI) -> Served:
    """uvicorn on 127.0.0.1, port 0 (the kernel's choice), as `wgfleet serve` configures it."""
    server = uvicorn.Server(uvicorn_config(app, Listener("127.0.0.1", 0)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    # Readiness, not a timed assertion: uvicorn says when it listens.
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(10)
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return Served(thread, server, f"http://127.0.0.1:{port}")


def stop(served: Served) -> None:
    served.server.should_exit = True
    served.thread.join(30)
    assert not served.thread.is_alive(), "uvicorn did not stop"


def serve_app(
    settings: Settings, after_write: Callable[[Sequence[str]], None] | None = None
) -> tuple[FastAPI, Served]:
    app = create_app(
        settings,
        after_write=after_write,
        metrics=lambda: (METRICS_BODY, "text/plain; version=0.0.4"),
    )
    return app, start(app)


@dataclass(frozen=True)
class Template:
    base: Path
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The seeded fleet and a token per scope, made once (scrypt makes seeding slow on
    purpose); each test gets its own copy."""
    base = tmp_path_factory.mktemp("srv-template")
    settings = make_settings(base)
    seed(settings)
    # As if every node had taken the seeded state: a write's pending nodes are its own.
    with open_fleet(settings, write=True) as fleet:
        for node, (desired, _) in fleet.store.node_revisions().items():
            fleet.store.mark_pushed(node, desired, True)
    tokens = {s.value: make_token(settings, f"{s.value}-token", [s.value]) for s in Scope}
    return Template(base, tokens)


@pytest.fixture
def seeded(template: Template, tmp_path: Path) -> Settings:
    base = tmp_path / "srv"
    shutil.copytree(template.base / "data", base / "data", symlinks=True)
    return make_settings(base)


@pytest.fixture
def running(seeded: Settings, template: Template) -> Iterator[Running]:
    written: list[tuple[str, ...]] = []
    app, served = serve_app(seeded, lambda nodes: written.append(tuple(nodes)))
    try:
        yield Running(served.url, app, seeded, dict(template.tokens), written)
    finally:
        stop(served)


TODAY = date.today()
