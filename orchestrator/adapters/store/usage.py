"""Usage as running totals: per configuration and billing period (``usage_totals``), the
store's used bytes (``store_totals``), the check that recomputes them, and the daily
totals per node the privacy profile may allow (``node_daily_totals``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from orchestrator.adapters.store.base import StoreBase, stored_date
from orchestrator.core.models import UsageTotal
from orchestrator.errors import NotFound, StoreError


@dataclass(frozen=True)
class RunningTotals:
    """What ``usage check`` compares: kept with each change vs recomputed from the rows."""

    granted: dict[str, int]  # configuration -> bytes granted by its top-ups
    used: int  # bytes in every usage row of the store


class UsageStore(StoreBase):
    """Usage totals, the store's running totals, and daily totals per node."""

    def add_usage(self, configuration: str, period_start: date, rx: int, tx: int) -> None:
        if rx < 0 or tx < 0:
            raise StoreError(f"negative usage for {configuration}: rx {rx}, tx {tx}")
        with self.transaction():
            row = self._one("SELECT id FROM configurations WHERE name = ?", (configuration,))
            if row is None:
                raise NotFound(f"no configuration {configuration!r}")
            self.db.execute(
                "INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, tx_bytes) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (configuration_id, period_start) DO UPDATE SET "
                "rx_bytes = usage_totals.rx_bytes + excluded.rx_bytes, "
                "tx_bytes = usage_totals.tx_bytes + excluded.tx_bytes",
                (row[0], period_start, rx, tx),
            )
            self._add_used(rx + tx)

    def usage(self, configuration: str | None = None) -> list[UsageTotal]:
        sql = (
            "SELECT c.name, u.period_start, u.rx_bytes, u.tx_bytes FROM usage_totals u "
            "JOIN configurations c ON c.id = u.configuration_id"
        )
        params: tuple[Any, ...] = ()
        if configuration is not None:
            sql, params = sql + " WHERE c.name = ?", (configuration,)
        return [
            UsageTotal(r[0], stored_date(r[1]) or date.min, int(r[2]), int(r[3]))
            for r in self._rows(sql + " ORDER BY c.name, u.period_start", params)
        ]

    def _merge_usage(
        self, ids: list[int], periods: list[str], rxs: list[int], txs: list[int]
    ) -> None:
        """Add each (configuration id, period) its bytes in usage_totals, and their sum to the
        store's used bytes."""
        if self.db.dialect == "sqlite":
            # The run holds the write lock since its ledger was read: every id is live.
            self.db.executemany(
                "INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, tx_bytes) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (configuration_id, period_start) DO UPDATE SET "
                "rx_bytes = usage_totals.rx_bytes + excluded.rx_bytes, "
                "tx_bytes = usage_totals.tx_bytes + excluded.tx_bytes",
                zip(ids, periods, rxs, txs, strict=True),
            )
            self._add_used(sum(rxs) + sum(txs))
            return
        # One statement over four columns passed as text (split by the server in C). An
        # upsert's speculative insertion costs PostgreSQL a second row version per row; an
        # update through a hash join, then an insert of the rows it did not find, does not,
        # and usage_totals keeps half of each page free so the update stays HOT. Rows of a
        # configuration deleted by another run meanwhile find no configuration and are dropped.
        # For this transaction: no JIT compilation (it costs more than it saves on one
        # statement), and room for the hash joins to stay in memory.
        self.db.execute("SET LOCAL jit = off")
        self.db.execute("SET LOCAL work_mem = '64MB'")
        self.db.execute(
            "WITH r AS MATERIALIZED (SELECT * FROM unnest(string_to_array(?, ',')::bigint[], "
            "string_to_array(?, ',')::date[], string_to_array(?, ',')::bigint[], "
            "string_to_array(?, ',')::bigint[]) AS r (id, period_start, rx, tx)), "
            "updated AS (UPDATE usage_totals u SET rx_bytes = u.rx_bytes + r.rx, "
            "tx_bytes = u.tx_bytes + r.tx FROM r WHERE u.configuration_id = r.id "
            "AND u.period_start = r.period_start "
            "RETURNING u.configuration_id, u.period_start, r.rx + r.tx AS bytes), "
            # Rows the update did not find, looked for only when it did not find them all.
            "fresh AS MATERIALIZED (SELECT r.* FROM r JOIN configurations c ON c.id = r.id "
            "WHERE (SELECT COUNT(*) FROM updated) < (SELECT COUNT(*) FROM r) "
            "AND NOT EXISTS (SELECT 1 FROM updated d WHERE d.configuration_id = r.id "
            "AND d.period_start = r.period_start)), "
            "inserted AS (INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, "
            "tx_bytes) SELECT id, period_start, rx, tx FROM fresh "
            # Another run (a shard syncing another node of the same configuration) may insert
            # the same row meanwhile: add to it rather than fail.
            "ON CONFLICT (configuration_id, period_start) DO UPDATE SET "
            "rx_bytes = usage_totals.rx_bytes + excluded.rx_bytes, "
            "tx_bytes = usage_totals.tx_bytes + excluded.tx_bytes) "
            "UPDATE store_totals SET bytes = bytes + (SELECT COALESCE(SUM(bytes), 0) FROM updated) "
            "+ (SELECT COALESCE(SUM(rx + tx), 0) FROM fresh) WHERE name = 'used_bytes'",
            (
                ",".join(map(str, ids)),
                ",".join(periods),
                ",".join(map(str, rxs)),
                ",".join(map(str, txs)),
            ),
        )

    def _add_used(self, delta: int) -> None:
        self.db.execute(
            "UPDATE store_totals SET bytes = bytes + ? WHERE name = 'used_bytes'", (delta,)
        )

    def _used_by(self, where: str, params: Sequence[Any]) -> int:
        """Bytes held by the usage rows of the configurations ``where`` selects."""
        row = self._one(
            "SELECT COALESCE(SUM(u.rx_bytes + u.tx_bytes), 0) FROM usage_totals u "
            f"JOIN configurations c ON c.id = u.configuration_id WHERE {where}",
            params,
        )
        return int(row[0]) if row else 0

    def used_total(self) -> int:
        """The used-bytes running total of the whole store."""
        row = self._one("SELECT bytes FROM store_totals WHERE name = 'used_bytes'")
        return int(row[0]) if row else 0

    def running_totals(self) -> RunningTotals:
        """Granted bytes per configuration and the store's used bytes, as kept with each
        change."""
        used = self.used_total()
        return RunningTotals(
            {r[0]: int(r[1]) for r in self._rows("SELECT name, granted_bytes FROM configurations")},
            used,
        )

    def recomputed_totals(self) -> RunningTotals:
        """The same totals recomputed from the top-up and usage rows.

        Summed here, not in SQL: a check must still work on a store whose totals outgrew 64
        bits (SQLite's SUM raises "integer overflow", PostgreSQL's bigint addition "out of
        range"), so that it can report them."""
        granted = {r[0]: 0 for r in self._rows("SELECT name FROM configurations")}
        for name, value in self._rows(
            "SELECT c.name, t.bytes_granted FROM topups t "
            "JOIN configurations c ON c.id = t.configuration_id"
        ):
            granted[name] += int(value)
        used = sum(
            int(rx) + int(tx)
            for rx, tx in self._rows("SELECT rx_bytes, tx_bytes FROM usage_totals")
        )
        return RunningTotals(granted, used)

    def erase_usage_before(self, cutoff: date, keep: date) -> int:
        """Erase usage periods that started before ``cutoff`` (never the ``keep`` sentinel
        period of quotas that do not reset); the running totals drop them too."""
        with self.transaction():
            # Counted and summed by the database: a month's end may close a million periods.
            row = self._one(
                "SELECT COUNT(DISTINCT configuration_id), SUM(rx_bytes + tx_bytes) "
                "FROM usage_totals WHERE period_start < ? AND period_start <> ?",
                (cutoff, keep),
            )
            configurations, erased = (int(row[0]), int(row[1] or 0)) if row else (0, 0)
            if configurations:
                self._add_used(-erased)
                self.db.execute(
                    "DELETE FROM usage_totals WHERE period_start < ? AND period_start <> ?",
                    (cutoff, keep),
                )
        return configurations

    def add_node_daily(self, day: date, node_bytes: dict[str, int]) -> None:
        """Add bytes to each node's total for ``day`` (the privacy profile allows it)."""
        with self.transaction():
            for node, count in sorted(node_bytes.items()):
                if count <= 0:
                    continue
                self.db.execute(
                    "INSERT INTO node_daily_totals (node, day, bytes) VALUES (?, ?, ?) "
                    "ON CONFLICT (node, day) DO UPDATE SET bytes = node_daily_totals.bytes + "
                    "excluded.bytes",
                    (node, day, count),
                )

    def node_daily(self, since: date) -> dict[str, list[tuple[date, int]]]:
        rows = self._rows(
            "SELECT node, day, bytes FROM node_daily_totals WHERE day >= ? ORDER BY node, day",
            (since,),
        )
        found: dict[str, list[tuple[date, int]]] = {}
        for node, day, count in rows:
            parsed = stored_date(day)
            assert parsed is not None
            found.setdefault(str(node), []).append((parsed, int(count)))
        return found

    def erase_node_daily(self, before: date | None) -> int:
        """Erase daily node totals older than ``before`` (all of them when None)."""
        with self.transaction():
            where, params = ("WHERE day < ?", (before,)) if before else ("", ())
            count = self._one(f"SELECT COUNT(*) FROM node_daily_totals {where}", params)
            self.db.execute(f"DELETE FROM node_daily_totals {where}", params)
        return int(count[0]) if count else 0
