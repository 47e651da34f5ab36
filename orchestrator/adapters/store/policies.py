"""Fleet-wide policies a fleet file applies (``policies``: dotted name -> JSON value)."""

from __future__ import annotations

from orchestrator.adapters.store.base import StoreBase


class PoliciesStore(StoreBase):
    """The fleet file's policies, replaced whole."""

    def policies(self) -> dict[str, str]:
        """Fleet-wide policies applied from a fleet file: dotted name -> JSON value."""
        return {str(r[0]): str(r[1]) for r in self._rows("SELECT name, value FROM policies")}

    def replace_policies(self, policies: dict[str, str]) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM policies")
            self.db.executemany(
                "INSERT INTO policies (name, value) VALUES (?, ?)", sorted(policies.items())
            )
