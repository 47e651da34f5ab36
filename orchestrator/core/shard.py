"""Deterministic shards of the fleet, so N controllers (or cron jobs) share it without overlap.

A node belongs to shard ``hash(name) mod N``: adding or removing a node moves no other node,
and every controller computes the same split with no coordination.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.core.errors import InvalidInput
from orchestrator.core.quoting import quote

SHARD_RE = re.compile(r"^([1-9][0-9]*)/([1-9][0-9]*)$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as operators write it: 1/4 .. 4/4
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, node: str) -> bool:
        digest = hashlib.sha256(node.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, nodes: Iterable[str]) -> list[str]:
        return sorted(n for n in nodes if self.holds(n))


def parse_shard(text: str) -> Shard:
    """``I/N`` with 1 <= I <= N; raises ValueError with a message naming the value."""
    match = SHARD_RE.match(text.strip())
    if not match:
        raise InvalidInput(f"shard {quote(text)}: expected I/N, for example 1/4")
    index, count = int(match[1]), int(match[2])
    if index > count:
        raise InvalidInput(f"shard {quote(text)}: I must be between 1 and N")
    return Shard(index, count)
