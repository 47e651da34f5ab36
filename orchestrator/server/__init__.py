"""`wgfleet serve`: the provider's HTTP API over the same use cases as the CLI and the TUI.

A UI like ``cli/`` and ``tui/``: routes parse and answer; the work is in ``service/``, reached
through ``open_fleet`` with the caller's token name as the session's actor.
"""

from orchestrator.server.app import create_app

__all__ = ["create_app"]
