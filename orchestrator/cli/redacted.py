"""A bug's traceback without the settings' secrets: the CLI still shows where it failed, but
never the store's password or a webhook token, which exception messages may quote."""

from __future__ import annotations

import traceback

from orchestrator.core.redaction import redact_text, url_secrets
from orchestrator.settings import Settings


def settings_secrets(settings: Settings) -> frozenset[str]:
    """Every text of the settings that must not be shown: the store URL's password in each
    form, and the whole webhook URL (its path is usually the token)."""
    found = set(url_secrets(settings.store_url))
    if settings.notify.webhook:
        found.add(settings.notify.webhook)
    return frozenset(found)


def redacted_traceback(secrets: frozenset[str]) -> str:
    """The exception being handled, formatted as Python would print it, secrets replaced."""
    return redact_text(traceback.format_exc(), secrets)
