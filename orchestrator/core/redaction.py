"""Secrets inside settings values (a store URL's password, a webhook's token), found and hidden.

A PostgreSQL URL may carry its password (``postgresql://user:PASSWORD@host/db`` or
``?password=``). Anything wgfleet shows about the store (``config show``, ``db`` output, the
demo banner, error lines, tracebacks) goes through :func:`redact_url` or :func:`redact_text`,
so the password never leaves the settings file.

The user information is taken to end at the *last* ``@`` of the URL: that can only hide more
than libpq would read as the password, never less. A user or password that libpq would split
differently (a raw ``@`` or ``/`` in it) is refused by :func:`url_problem` before any driver
sees the URL, so the two readings agree on every URL that is used.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "***"
# libpq connection parameters whose value is a secret when given in the query string.
SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


@dataclass(frozen=True)
class UrlParts:
    """A database URL split the way libpq reads it (only what wgfleet needs to name it)."""

    scheme: str
    user: str
    password_span: _Span | None  # where the password sits in the URL text
    host: str  # comma-separated hosts, or "" for the local socket
    database: str
    query: tuple[tuple[str, str, _Span], ...]  # (name, raw value, where the value sits)


def _parse(url: str) -> UrlParts:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return UrlParts("", "", None, "", "", ())
    offset = len(scheme) + 3
    at = rest.rfind("@")
    user = ""
    password_span = None
    if at >= 0:
        userinfo = rest[:at]
        user, colon, _password = userinfo.partition(":")
        if colon:
            password_span = _Span(offset + len(user) + 1, offset + at)
        hostpart_start = at + 1
    else:
        hostpart_start = 0
    hostpart = rest[hostpart_start:]
    location, _, query_text = hostpart.partition("?")
    host, _, database = location.partition("/")
    query = []
    position = offset + hostpart_start + len(location) + 1
    for item in query_text.split("&") if query_text else ():
        name, _, value = item.partition("=")
        value_start = position + len(name) + 1
        query.append((name, value, _Span(value_start, value_start + len(value))))
        position += len(item) + 1
    parameters = {name: value for name, value, _ in query}
    host = parameters.get("host", host) or parameters.get("hostaddr", "")
    if "port" in parameters and host:
        host = f"{host}:{parameters['port']}"
    elif "port" in parameters:
        host = f"the local socket, port {parameters['port']}"
    database = parameters.get("dbname", database)
    return UrlParts(
        scheme,
        urllib.parse.unquote(user),
        password_span,
        urllib.parse.unquote(host),
        urllib.parse.unquote(database),
        tuple(query),
    )


def _secret_spans(parts: UrlParts) -> list[_Span]:
    spans = [parts.password_span] if parts.password_span else []
    spans += [span for name, _, span in parts.query if name in SECRET_PARAMETERS and span.end]
    return sorted(spans, key=lambda span: span.start)


def redact_url(url: str) -> str:
    """``url`` with its password (and any secret query parameter) replaced by ``***``."""
    parts = _parse(url)
    shown, last = [], 0
    for span in _secret_spans(parts):
        if span.end > span.start:
            shown += [url[last : span.start], REDACTED]
            last = span.end
    return "".join([*shown, url[last:]])


def url_secrets(url: str) -> frozenset[str]:
    """Every form in which ``url``'s secrets could be quoted: as written and percent-decoded."""
    parts = _parse(url)
    found = set()
    for span in _secret_spans(parts):
        raw = url[span.start : span.end]
        found.update({raw, urllib.parse.unquote(raw)})
    return frozenset(s for s in found if s)


def url_problem(url: str) -> str | None:
    """Why libpq would read ``url``'s password differently from :func:`redact_url`, if it
    would (then the URL must not reach the driver: its error would quote a piece of it)."""
    parts = _parse(url)
    if parts.password_span is None:
        return None
    userinfo = url[len(parts.scheme) + 3 : parts.password_span.end]
    if "@" in userinfo or "/" in userinfo:
        return "the user or password holds a raw '@' or '/': percent-encode it (%40, %2F)"
    return None


def database_target(url: str) -> str:
    """Which database on which server ``url`` names, for error lines (never the password)."""
    parts = _parse(url)
    database = parts.database or parts.user or "(default)"
    return f"database {database!r} on {parts.host or 'the local socket'}"


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***`` (longest first, so a
    secret that contains another is hidden whole)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def webhook_origin(url: str | None) -> str | None:
    """What may be shown of a webhook URL: its scheme and host (its path may be a token)."""
    if not url:
        return None
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.hostname or ''}/..."
