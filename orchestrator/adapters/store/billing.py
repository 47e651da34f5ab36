"""What the provider sells and what customers bought: plans (``plans``), top-ups
(``topups`` and each configuration's granted bytes), and the events queued for the
operator's hook (``notifications``, with each configuration's warned period)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date
from typing import Any

from orchestrator.adapters.store.base import StoreBase, stored_date
from orchestrator.core.models import Plan, ResetRule, TopUp
from orchestrator.errors import NotFound, StoreError


class BillingStore(StoreBase):
    """Plans, top-ups and notifications."""

    def upsert_plan(self, plan: Plan) -> None:
        row = {
            "name": plan.name,
            "quota_bytes": plan.quota_bytes,
            "reset": plan.reset.value,
            "anchor_day": plan.anchor_day,
            "price": plan.price,
            "validity_days": plan.validity_days,
            "valid_until": plan.valid_until,
        }
        self._upsert("plans", "name", row)

    def remove_plan(self, name: str) -> None:
        with self.transaction():
            self.plan(name)
            users = self._rows("SELECT name FROM configurations WHERE plan = ?", (name,))
            if users:
                raise StoreError(
                    f"plan {name!r} is used by {', '.join(sorted(r[0] for r in users))}"
                )
            self.db.execute("DELETE FROM plans WHERE name = ?", (name,))

    def plans(self) -> list[Plan]:
        return [
            Plan(
                r[0],
                int(r[1]),
                ResetRule(r[2]),
                int(r[3]),
                r[4],
                None if r[5] is None else int(r[5]),
                stored_date(r[6]),
            )
            for r in self._rows(
                "SELECT name, quota_bytes, reset, anchor_day, price, validity_days, valid_until "
                "FROM plans ORDER BY name"
            )
        ]

    def plan(self, name: str) -> Plan:
        for plan in self.plans():
            if plan.name == name:
                return plan
        raise NotFound(f"no plan {name!r} in the store")

    def add_topup(self, topup: TopUp) -> tuple[TopUp, bool]:
        """Record a top-up once per invoice; return (the stored top-up, whether it is new)."""
        with self.transaction():
            existing = self.topup(topup.invoice)
            if existing is not None:
                return existing, False
            config_id = None
            if topup.configuration is not None:
                row = self._one(
                    "SELECT id FROM configurations WHERE name = ?", (topup.configuration,)
                )
                if row is None:
                    raise NotFound(f"no configuration {topup.configuration!r}")
                config_id = row[0]
            if config_id is not None:
                self.db.execute(
                    "UPDATE configurations SET granted_bytes = granted_bytes + ? WHERE id = ?",
                    (topup.bytes_granted, config_id),
                )
            self.db.execute(
                "INSERT INTO topups "
                "(invoice, configuration_id, amount, bytes_granted, purchased_on) "
                "VALUES (?, ?, ?, ?, ?)",
                (topup.invoice, config_id, topup.amount, topup.bytes_granted, topup.purchased_on),
            )
        return topup, True

    _TOPUP_SELECT = (
        "SELECT t.invoice, c.name, t.amount, t.bytes_granted, t.purchased_on FROM topups t "
        "LEFT JOIN configurations c ON c.id = t.configuration_id"
    )

    def topup(self, invoice: str) -> TopUp | None:
        row = self._one(self._TOPUP_SELECT + " WHERE t.invoice = ?", (invoice,))
        return (
            None
            if row is None
            else TopUp(row[0], row[1], row[2], int(row[3]), stored_date(row[4]) or date.min)
        )

    def topups(
        self, configuration: str | None = None, *, purchased_before: date | None = None
    ) -> list[TopUp]:
        """Every top-up, or one configuration's; ``purchased_before``: only those older."""
        where: list[str] = []
        params: list[Any] = []
        if configuration is not None:
            where.append("c.name = ?")
            params.append(configuration)
        if purchased_before is not None:
            where.append("t.purchased_on < ?")
            params.append(purchased_before)
        sql = self._TOPUP_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        return [
            TopUp(r[0], r[1], r[2], int(r[3]), stored_date(r[4]) or date.min)
            for r in self._rows(sql + " ORDER BY t.purchased_on, t.invoice", params)
        ]

    def erase_topups(self, invoices: Iterable[str]) -> int:
        """Erase top-up transactions past the profile's retention; granted totals drop them."""
        wanted = sorted(set(invoices))
        if not wanted:
            return 0
        with self.transaction():
            rows = [
                r
                for r in self._rows("SELECT invoice, configuration_id, bytes_granted FROM topups")
                if r[0] in set(wanted)
            ]
            self.db.executemany(
                "UPDATE configurations SET granted_bytes = granted_bytes - ? WHERE id = ?",
                [(int(r[2]), r[1]) for r in rows if r[1] is not None],
            )
            self.db.executemany("DELETE FROM topups WHERE invoice = ?", [(r[0],) for r in rows])
        return len(rows)

    def queue_notifications(self, events: Iterable[tuple[str, str]]) -> None:
        """(kind, subject) events, queued in the caller's transaction with what caused them."""
        rows = list(events)
        if rows:
            with self.transaction():
                self.db.executemany("INSERT INTO notifications (kind, subject) VALUES (?, ?)", rows)

    def pending_notifications(self) -> list[tuple[int, str, str]]:
        return [
            (int(r[0]), r[1], r[2])
            for r in self._rows("SELECT id, kind, subject FROM notifications ORDER BY id")
        ]

    def _drop_notifications_about(self, subjects: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM notifications WHERE subject = ?", [(s,) for s in subjects])

    def drop_notification(self, event_id: int) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM notifications WHERE id = ?", (event_id,))

    def mark_warned(self, periods: Mapping[str, date]) -> list[str]:
        """Note the period each configuration was warned for; return those not yet warned in
        it (a warning is sent once per billing period and crossing)."""
        names = sorted(periods)
        fresh = []
        with self.transaction():
            current: dict[str, date | None] = {}
            for chunk, marks in self._in_chunks(names):
                current.update(
                    (r[0], stored_date(r[1]))
                    for r in self._rows(
                        f"SELECT name, warned_period FROM configurations WHERE name IN ({marks})",
                        chunk,
                    )
                )
            fresh = [n for n in names if n in current and current[n] != periods[n]]
            self.db.executemany(
                "UPDATE configurations SET warned_period = ? WHERE name = ?",
                [(periods[n], n) for n in fresh],
            )
        return fresh

    def forget_warnings(self, names: Collection[str]) -> None:
        """Forget the warning of configurations back under the threshold (a top-up), so the
        next crossing warns again."""
        with self.transaction():
            self.db.executemany(
                "UPDATE configurations SET warned_period = NULL WHERE name = ?",
                [(n,) for n in sorted(names)],
            )
