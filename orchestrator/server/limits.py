"""Request bodies have a size limit: beyond it the answer is 413 and nothing is read further.

Checked twice: a declared Content-Length over the limit is refused before a byte is read, and
a body sent without one (chunked) is counted as it arrives and refused once it passes.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.server.problems import PROBLEM_MEDIA_TYPE, http_problem

# Every body the API takes is a few hundred bytes; 64 KiB leaves room and bounds the work.
MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    # Answer now: the framework turns any error while reading a body into
                    # its own 400, which ``watched`` then drops.
                    refused = True
                    await self._refuse(send)
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            if not refused:
                await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counted, watched)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            http_problem(413, f"request body over {self.limit} bytes; nothing was read further")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    headers: Any = scope.get("headers", [])
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
