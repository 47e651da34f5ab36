"""The fleet's controllers (``controllers``): each one's public SSH keys, registered by name;
and the files they share on PostgreSQL (``shared_files``: see service/shared_files.py).

Revoking keeps the row: every later deploy and key push reads it to keep that controller's
keys off the nodes, and the name is never reused for other keys.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from orchestrator.adapters.store.base import StoreBase, stored_date
from orchestrator.core.controllers import PURPOSES, Controller
from orchestrator.errors import NotFound, StoreError

_COLUMNS = "name, deploy_key, collector_key, push_key, added_on, revoked_on"


def _controller(row: tuple[Any, ...]) -> Controller:
    added = stored_date(row[4])
    assert added is not None
    return Controller(
        str(row[0]),
        dict(zip(PURPOSES, map(str, row[1:4]), strict=True)),
        added,
        stored_date(row[5]),
    )


class ControllersStore(StoreBase):
    """Controllers: registered, listed, revoked; one controller's key replaced by a rotation."""

    def add_controller(self, controller: Controller) -> None:
        with self.transaction():
            if self._one("SELECT 1 FROM controllers WHERE name = ?", (controller.name,)):
                raise StoreError(
                    f"a controller named {controller.name} exists (revoked ones count too)"
                )
            self.db.execute(
                f"INSERT INTO controllers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    controller.name,
                    *(controller.keys[p] for p in PURPOSES),
                    controller.added_on.isoformat(),
                    None,
                ),
            )

    def controllers(self) -> list[Controller]:
        return [
            _controller(r) for r in self._rows(f"SELECT {_COLUMNS} FROM controllers ORDER BY name")
        ]

    def revoke_controller(self, name: str, today: date) -> Controller:
        """Mark the named controller revoked (again keeps the first day); return it as now."""
        with self.transaction():
            if self._one("SELECT 1 FROM controllers WHERE name = ?", (name,)) is None:
                raise NotFound(f"no controller named {name}")
            self.db.execute(
                "UPDATE controllers SET revoked_on = ? WHERE name = ? AND revoked_on IS NULL",
                (today.isoformat(), name),
            )
            row = self._one(f"SELECT {_COLUMNS} FROM controllers WHERE name = ?", (name,))
        assert row is not None
        return _controller(row)

    def replace_controller_key(self, purpose: str, old: str, new: str) -> None:
        """A key rotation's end: the controller registered with ``old`` for ``purpose`` is
        registered with ``new`` (key lines ``TYPE BLOB``; no row has ``old``: nothing)."""
        if purpose not in PURPOSES:
            raise ValueError(purpose)
        column = f"{purpose}_key"
        with self.transaction():
            self.db.execute(f"UPDATE controllers SET {column} = ? WHERE {column} = ?", (new, old))

    def shared_files(self) -> dict[str, str]:
        return dict(self._rows("SELECT name, content FROM shared_files"))

    def save_shared_file(self, name: str, content: str) -> None:
        self._upsert("shared_files", "name", {"name": name, "content": content})
