"""The operations trail (``operations``): one row per writing session, newest kept.

What ran, on which controller, from when to when and how it ended: the operator's record of
their own runs. It names no account, configuration or key (core.privacy declares the table);
a session the HTTP API opened names the token that made it (``actor``), never its secret.
"""

from __future__ import annotations

from orchestrator.adapters.store.base import StoreBase
from orchestrator.core.models import OPERATIONS_KEPT, Operation


class OperationsStore(StoreBase):
    """The trail of writing sessions."""

    def record_operation(self, operation: Operation) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO operations (operation, controller, started_at, finished_at, "
                "outcome, steps, actor) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    operation.operation[:200],
                    operation.controller[:200],
                    operation.started_at,
                    operation.finished_at,
                    operation.outcome[:200],
                    operation.steps,
                    operation.actor[:200] if operation.actor else None,
                ),
            )
            self.db.execute(
                "DELETE FROM operations WHERE id <= (SELECT MAX(id) FROM operations) - ?",
                (OPERATIONS_KEPT,),
            )

    def operations(self, limit: int = 50) -> list[Operation]:
        """The newest ``limit`` operations, newest first."""
        rows = self._rows(
            "SELECT operation, controller, started_at, finished_at, outcome, steps, actor "
            "FROM operations ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            Operation(
                str(r[0]),
                str(r[1]),
                int(r[2]),
                int(r[3]),
                str(r[4]),
                int(r[5]),
                None if r[6] is None else str(r[6]),
            )
            for r in rows
        ]
