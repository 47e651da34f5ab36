"""What a parser of untrusted text refuses with: its tests compare the one-line message."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def refusal(error: type[Exception], parse: Callable[[str], object], text: str) -> str:
    """The message ``parse`` raises ``error`` with on ``text`` (the test fails if it accepts
    the text or raises anything else)."""
    with pytest.raises(error) as refused:
        parse(text)
    return str(refused.value)
