"""What a sync reads once (who owns which key: the ledger) and what it lands in one
transaction (usage, last-seen counters, the nodes that answered)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, NamedTuple

from orchestrator.adapters.store.counters import CountersStore
from orchestrator.adapters.store.usage import UsageStore
from orchestrator.core.accounting import LastSeen, PeerCounters
from orchestrator.errors import StoreError


@dataclass(frozen=True)
class SyncLedger:
    """What a sync reads once, as columns with one entry per configuration, and who owns each
    key as an entry number (no dictionary per configuration to build)."""

    owners: dict[str, int]  # public key (current, replaced and in grace, leaving) -> entry
    names: list[str]  # entry -> configuration
    ids: list[int]  # entry -> its row id
    plan_of: list[str | None]  # entry -> plan name
    # Keys a configuration owns only while their removal is pending on some nodes (a replaced
    # key whose grace ended): believed on those nodes only, not wherever it is placed.
    leaving: frozenset[str] = frozenset()


class RowUsage(NamedTuple):
    """Bytes to add as columns: configuration row id, billing period, rx, tx (each id and
    period together once)."""

    ids: list[int]
    periods: list[date]
    rx: list[int]
    tx: list[int]


@dataclass
class _LedgerColumns:
    """Ledgers of several statements as one: each configuration once, whichever read it."""

    owners: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    plan_of: list[str | None] = field(default_factory=list)
    _entry_of: dict[int, int] = field(default_factory=dict)

    def add(self, part: SyncLedger) -> None:
        renumbered: dict[int, int] = {}
        for entry, row_id in enumerate(part.ids):
            if row_id not in self._entry_of:
                self._entry_of[row_id] = renumbered[entry] = len(self.ids)
                self.ids.append(row_id)
                self.names.append(part.names[entry])
                self.plan_of.append(part.plan_of[entry])
        for key, entry in part.owners.items():
            if entry in renumbered:
                self.owners[key] = renumbered[entry]

    def ledger(self) -> SyncLedger:
        return SyncLedger(self.owners, self.names, self.ids, self.plan_of)


class LedgerStore(CountersStore, UsageStore):
    """A sync's ledger and its accounting."""

    def sync_ledger(
        self, nodes: Collection[str] | None = None, keys: Collection[str] = ()
    ) -> SyncLedger:
        """Who owns which key, each configuration's id and plan: what a sync reads.

        The whole store's by default. ``nodes``: only what accounting those nodes' answers can
        need, so a sync's memory follows its batch, not the fleet: the configurations placed
        on them, and every owner (current, replaced, leaving) of ``keys`` (their answers' keys)
        that none of those own and of the keys pending removal there. For every one of those
        keys the answer is the whole store's: a key placed on other nodes only is still named
        as such."""
        if nodes is None:
            ledger = self._ledger_of("", ())
            return replace(ledger, leaving=self._own_pending_keys(ledger.owners, ledger.ids))
        columns = _LedgerColumns()
        pending: set[str] = set()
        for chunk, marks in self._in_chunks(nodes):
            columns.add(
                self._ledger_of(
                    "WHERE id IN (SELECT configuration_id FROM configuration_nodes "
                    f"WHERE node IN ({marks}))",
                    chunk,
                )
            )
            pending.update(
                r[0]
                for r in self._rows(
                    f"SELECT public_key FROM pending_removals WHERE node IN ({marks})", chunk
                )
            )
        lookup = pending | {k for k in keys if k not in columns.owners}
        for chunk, marks in self._in_chunks(lookup):
            columns.add(
                self._ledger_of(
                    f"WHERE public_key IN ({marks}) OR previous_public_key IN ({marks}) OR id IN "
                    "(SELECT configuration_id FROM pending_removals "
                    f"WHERE public_key IN ({marks}))",
                    chunk * 3,
                )
            )
        ledger = columns.ledger()
        return replace(ledger, leaving=self._own_pending_keys(ledger.owners, ledger.ids, lookup))

    def _ledger_of(self, where: str, params: Sequence[Any]) -> SyncLedger:
        """The ledger of the configurations ``where`` selects (no leaving keys yet).

        Fetched as one text (five tab-separated fields per configuration) rather than one row
        per configuration: 100,000 rows cost more to fetch than to use. Names, keys or plans
        holding a tab, which the service never lets in, would not split evenly: they are
        then read row by row."""
        agg, line = (
            ("group_concat", "printf") if self.db.dialect == "sqlite" else ("string_agg", "format")
        )
        # printf/format render a NULL as nothing: no previous key, no plan ("+" marks one).
        row = self._one(
            f"SELECT COUNT(*), {agg}({line}(?, id, name, public_key, previous_public_key, "
            f"'+' || plan), ?) FROM configurations {where}",
            ("\t".join(["%s"] * 5), "\t", *params),
        )
        count, text = (int(row[0]), row[1] or "") if row else (0, "")
        fields = text.split("\t") if count else []
        if len(fields) != 5 * count:
            return self._sync_ledger_by_rows(where, params)
        keys, previous, plans = fields[2::5], fields[3::5], fields[4::5]
        owners = dict(zip(keys, range(count), strict=True))
        if any(previous):
            owners.update((key, i) for i, key in enumerate(previous) if key)
        plan_names = {p: p[1:] if p else None for p in set(plans)}
        ids = list(map(int, fields[0::5]))
        return SyncLedger(owners, fields[1::5], ids, list(map(plan_names.__getitem__, plans)))

    def _own_pending_keys(
        self, owners: dict[str, int], ids: list[int], keys: Collection[str] | None = None
    ) -> frozenset[str]:
        """Keys on their way off nodes still bill their configuration (a replaced key whose
        grace ended, a disabled one): their last bytes count. Return those the configuration
        owns only that way (of ``keys`` only, when given)."""
        sql = (
            "SELECT DISTINCT public_key, configuration_id FROM pending_removals "
            "WHERE configuration_id IS NOT NULL"
        )
        if keys is None:
            rows = self._rows(sql)
        else:
            rows = []
            for chunk, marks in self._in_chunks(keys):
                rows += self._rows(f"{sql} AND public_key IN ({marks})", chunk)
        leaving = set()
        if rows:
            entry_of = dict(zip(ids, range(len(ids)), strict=True))
            for key, config_id in rows:
                entry = entry_of.get(int(config_id))
                if entry is not None and key not in owners:
                    owners[key] = entry
                    leaving.add(key)
        return frozenset(leaving)

    def _sync_ledger_by_rows(self, where: str = "", params: Sequence[Any] = ()) -> SyncLedger:
        rows = self._rows(
            f"SELECT id, name, plan, public_key, previous_public_key FROM configurations {where}",
            params,
        )
        owners = {r[3]: i for i, r in enumerate(rows)}
        owners.update((r[4], i) for i, r in enumerate(rows) if r[4] is not None)
        ids = [int(r[0]) for r in rows]
        return SyncLedger(owners, [r[1] for r in rows], ids, [r[2] for r in rows])

    def apply_accounting(
        self,
        usage: RowUsage,
        last_seen: Mapping[str, PeerCounters | Mapping[str, LastSeen]],
        synced: Collection[str] = (),
        synced_at: int | None = None,
    ) -> None:
        """A run's accounting, landed together with the counters it was computed from.

        ``usage``: bytes to add as columns by configuration row id (from the run's ledger, read
        in this transaction), each with its billing period; ``last_seen``: each touched node's
        full last-seen counters; ``synced``: nodes that answered this sync. Set-based: the
        usage goes to the database as columns and lands with one statement, so 100,000
        counters cost no more round trips than 10. Usage of a configuration deleted meanwhile
        finds no row to land on and is dropped with it.
        """
        with self.transaction():
            if not len(usage.ids) == len(usage.periods) == len(usage.rx) == len(usage.tx):
                raise StoreError("a sync's usage columns differ in length")
            if usage.ids:
                if min(usage.rx) < 0 or min(usage.tx) < 0:
                    raise StoreError("negative usage in a sync's accounting")
                # Dates as ISO text, converted once per period rather than once per row.
                iso = {period: period.isoformat() for period in set(usage.periods)}
                self._merge_usage(
                    usage.ids, list(map(iso.__getitem__, usage.periods)), usage.rx, usage.tx
                )
            self._write_last_seen(last_seen)
            # When each node last answered (unix seconds, ``synced_at`` or now): the metrics'
            # last successful sync. A node's time, never a user's.
            at = int(time.time()) if synced_at is None else synced_at
            self.db.executemany(
                "UPDATE nodes SET last_sync_ok = ?, last_sync_at = ? WHERE name = ?",
                [(True, at, node) for node in sorted(synced)],
            )
