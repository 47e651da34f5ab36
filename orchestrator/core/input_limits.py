"""The documented bounds on what wgfleet reads from outside (docs/COMMANDS.md, "Bad input").

A file over its bound is refused by its size before a byte of it is parsed; within it, every
parser below stays linear and quick. The bounds are far above any real file: a fleet file of
4 MiB holds about 30,000 static configurations, a billing batch of 64 MiB about 500,000 lines.
"""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB

SETTINGS_MAX_BYTES = 1 * MiB
FLEET_FILE_MAX_BYTES = 4 * MiB
INVENTORY_MAX_BYTES = 16 * MiB
SAVED_PLAN_MAX_BYTES = 32 * MiB
TOPUP_BATCH_MAX_BYTES = 64 * MiB
WG_QUICK_MAX_BYTES = 64 * KiB
# A batch of configurations (`peers add --from`): 10,000 rows of a few hundred characters.
PEER_BATCH_MAX_BYTES = 8 * MiB

# One line of a top-up batch (a real one is under 200 characters).
TOPUP_LINE_MAX_CHARS = 1024

# YAML: nodes after alias expansion, and nesting depth (a deeper document is not a settings
# file, a fleet file or an inventory, and would exhaust the parser's stack).
YAML_MAX_NODES = 2_000_000
YAML_MAX_DEPTH = 64

# Every byte amount the store keeps (quotas, top-ups, their sums, usage) is a signed 64-bit
# integer: SQLite's INTEGER and PostgreSQL's bigint.
MAX_BYTES = 2**63 - 1


def describe(limit: int) -> str:
    """``limit`` bytes for people: 4 MiB, 64 KiB."""
    for unit, size in (("MiB", MiB), ("KiB", KiB)):
        if limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"
