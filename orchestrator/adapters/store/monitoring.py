"""What the monitoring metrics read (`service/metrics.py`): counts per node and per
configuration state, and when each node last answered a sync. Aggregates only: nothing here
returns a configuration's name, key or address, so a scrape never loads the configurations."""

from __future__ import annotations

from typing import Any

from orchestrator.adapters.store.base import StoreBase
from orchestrator.core.models import DisabledReason


class MonitoringStore(StoreBase):
    """Aggregates for the metrics, each one query."""

    def enabled_peer_counts(self) -> dict[str, int]:
        """node -> enabled configurations placed on it (the peers its interface carries)."""
        rows = self._rows(
            "SELECT p.node, COUNT(*) FROM configuration_nodes p "
            "JOIN configurations c ON c.id = p.configuration_id "
            "WHERE c.enabled GROUP BY p.node"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def configuration_state_counts(self) -> list[tuple[bool, DisabledReason | None, int]]:
        """(enabled, why not, how many configurations) for each combination present."""
        rows = self._rows(
            "SELECT enabled, disabled_reason, COUNT(*) FROM configurations "
            "GROUP BY enabled, disabled_reason"
        )
        return [(bool(r[0]), _reason(r[1]), int(r[2])) for r in rows]

    def removal_counts(self) -> dict[str, int]:
        """node -> key removals it has not confirmed yet."""
        rows = self._rows("SELECT node, COUNT(*) FROM pending_removals GROUP BY node")
        return {str(r[0]): int(r[1]) for r in rows}

    def node_sync_times(self) -> dict[str, int | None]:
        """node -> unix seconds of its last successful sync (None: never synced)."""
        rows = self._rows("SELECT name, last_sync_at FROM nodes")
        return {str(r[0]): None if r[1] is None else int(r[1]) for r in rows}


def _reason(value: Any) -> DisabledReason | None:
    try:
        return DisabledReason(value) if value else None
    except ValueError:
        return DisabledReason.OPERATOR  # a reason this version does not know: off, by someone
