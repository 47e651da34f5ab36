"""Who is calling: the bearer token checked, its scopes against the route, the caller's session.

Wrong tokens are slowed down by ONE counter for the whole process, keyed by nothing that
identifies a client. Keying it by address would mean keeping client addresses in memory (and
the promise is that the API keeps none); the price is that a flood of wrong tokens slows every
wrong token, while a request with a valid token never waits on the counter.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from orchestrator.core.metrics import NO_OBSERVER, RunObserver
from orchestrator.core.tokens import ApiToken, allowed, brake_decay, brake_delay
from orchestrator.service.context import Fleet, open_fleet
from orchestrator.service.push import pending_nodes
from orchestrator.service.tokens import authenticate
from orchestrator.settings import Settings

# How long an API write queues behind another run holding the fleet lock before it answers
# 503 (FleetBusy, exit 3): a backend retries; a request must not hang for minutes.
WRITE_WAIT_SECONDS = 30.0

AfterWrite = Callable[[Sequence[str]], None]


class Refused(Exception):
    """A request refused before any use case ran (401, 403)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Brake:
    """The wrong-token counter: each wrong token adds one, idle time forgives (core.tokens)."""

    clock: Callable[[], float] = time.monotonic
    failures: float = 0.0
    last: float = 0.0
    last_delay: float = 0.0  # what the newest wrong token waited (tests read it)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self) -> float:
        """Count one wrong token; return the seconds its answer waits."""
        with self._lock:
            now = self.clock()
            self.failures = brake_decay(self.failures, now - self.last) + 1
            self.last = now
            self.last_delay = brake_delay(math.ceil(self.failures))
            return self.last_delay

    def reset(self) -> None:
        with self._lock:
            self.failures = 0.0
            self.last = self.clock()
            self.last_delay = 0.0


@dataclass
class Caller:
    """An authorised request: the token's name (the actor the trail records), the use case's
    name, and the sessions its handler opens."""

    settings: Settings
    token: ApiToken
    operation: str
    after_write: AfterWrite | None
    # Where the pushes a write makes report their durations and failures (/metrics).
    observer: RunObserver = NO_OBSERVER
    pending: list[str] = field(default_factory=list)

    @contextmanager
    def reading(self) -> Iterator[Fleet]:
        with open_fleet(self.settings, operation=self.operation, actor=self.token.name) as fleet:
            yield fleet

    @contextmanager
    def writing(self, store_only: bool = False) -> Iterator[Fleet]:
        """A writing session; once it committed, ``pending`` holds the nodes that have not
        taken the change and ``after_write`` hears of them. ``store_only``: for a use case
        that changes the store only (`writes_store`: a top-up), a session that takes no fleet
        lock, so the request never waits behind a running sync."""
        with open_fleet(
            self.settings,
            write=not store_only,
            store_only=store_only,
            timeout=WRITE_WAIT_SECONDS,
            operation=self.operation,
            actor=self.token.name,
            observer=self.observer,
        ) as fleet:
            yield fleet
            self.pending = pending_nodes(fleet)
        if self.after_write is not None:
            self.after_write(tuple(self.pending))


bearer = HTTPBearer(auto_error=False, description="a token from `wgfleet tokens add`")


def _check(settings: Settings, presented: str) -> tuple[ApiToken | None, str]:
    with open_fleet(settings) as fleet:
        verdict = authenticate(fleet, presented)
    return verdict.token, verdict.refusal


async def authorized(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller, when its token is valid and its scopes allow this route; else 401 or 403."""
    app = request.app
    settings: Settings = app.state.settings
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Refused(401, "give a token: Authorization: Bearer wgf_...")
    token, refusal = await run_in_threadpool(_check, settings, credentials.credentials)
    if token is None:
        delay = app.state.brake.fail()
        if delay:
            await asyncio.sleep(delay)
        raise Refused(401, refusal)
    route = request.scope["route"].path
    if not allowed(token.scopes, request.method, route):
        raise Refused(
            403, f"token {token.name} ({', '.join(sorted(token.scopes))}) may not call this"
        )
    operation = f"api {request.method} {route}"
    return Caller(settings, token, operation, app.state.after_write, app.state.observer)


# A route's caller, as its handlers declare it: authenticated and allowed, or refused before.
CallerDep = Annotated[Caller, Depends(authorized)]
