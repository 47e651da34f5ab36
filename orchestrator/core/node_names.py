"""The one rule for a node's name, wherever a name enters (inventory, fleet file, arguments).

A node name becomes a file name (client configs, deploy records), an Ansible host pattern
(`--limit`), a word on a node's command line and a key in the store. So it is lowercase
letters, digits, '.', '_' and '-' only, starts with a letter or digit, is at most 63
characters long (a DNS label), and is none of the names Ansible reads as a pattern.
"""

from __future__ import annotations

import re

NODE_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
NODE_NAME_RE = re.compile(NODE_NAME_PATTERN)
# Ansible's own names: `--limit all` would reach every host, not a node called "all".
RESERVED_NODE_NAMES = frozenset({"all", "ungrouped", "localhost"})
NODE_NAME_HINT = (
    "a node name is 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter "
    "or digit, and not all, ungrouped or localhost"
)


def node_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a node, or None when it can."""
    if not isinstance(name, str) or NODE_NAME_RE.fullmatch(name) is None:
        return NODE_NAME_HINT
    if name in RESERVED_NODE_NAMES:
        return f"{name!r} is Ansible's own name; {NODE_NAME_HINT}"
    return None
