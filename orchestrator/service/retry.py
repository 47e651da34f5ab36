"""Run a store transaction again when a concurrent writer made the store abort it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from orchestrator.errors import StoreConflict

T = TypeVar("T")
ATTEMPTS = 5


def retry_conflicts(work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """``work`` must be one whole transaction: an aborted attempt wrote nothing, so running it
    again from its reads is exact. Shards writing the same configurations can deadlock on
    PostgreSQL; the store aborts one of them and it lands on the next attempt."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except StoreConflict:
            if attempt == attempts:
                raise
            time.sleep(random.uniform(0.02, 0.1) * attempt)  # noqa: S311 (jitter, not a secret)
    raise AssertionError("unreachable")
