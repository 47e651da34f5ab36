"""Who is asking for node leases: one name per run, unique across controllers and processes."""

from __future__ import annotations

import os
import secrets
import socket
from functools import cache


@cache
def run_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
