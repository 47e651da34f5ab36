"""Deliver one event to the operator's hook: a command (event as JSON on stdin) or an HTTP
webhook (JSON POST). True when the hook took it."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from typing import Any


def run_command(argv: tuple[str, ...], event: dict[str, Any], timeout: float) -> str | None:
    """None when the command exited 0, else why not (one line)."""
    try:
        result = subprocess.run(
            list(argv),
            input=json.dumps(event) + "\n",
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"notify command: {exc}"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [""])[-1][:200]
        return f"notify command exited {result.returncode}: {last}".rstrip(": ")
    return None


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is not followed: a redirect could lead the event (and the
    checks on the URL's scheme) elsewhere. The 3xx answer is reported as not taken."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


def post_webhook(url: str, event: dict[str, Any], timeout: float) -> str | None:
    """None when the webhook answered 2xx, else why not (never the URL: it may hold a token)."""
    # The settings allow https URLs, or http to a loopback address (core.notify.webhook_problem).
    request = urllib.request.Request(  # noqa: S310
        url,
        data=json.dumps(event).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with _NO_REDIRECTS.open(request, timeout=timeout) as response:
            if 200 <= response.status < 300:
                return None
            return f"notify webhook answered {response.status}"
    except urllib.error.HTTPError as exc:
        return f"notify webhook answered {exc.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"notify webhook unreachable: {reason}"
