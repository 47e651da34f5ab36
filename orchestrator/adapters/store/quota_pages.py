"""The quota pass's reads: configurations with their top-ups and usage, a page at a time, so
judging a million configurations holds one page of them, not the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from orchestrator.adapters.store.base import stored_date
from orchestrator.adapters.store.configurations import ConfigurationsStore
from orchestrator.core.models import Configuration, TopUp, UsageTotal

QUOTA_PAGE_SIZE = 5000


@dataclass(frozen=True)
class QuotaPage:
    """Configurations (without placements); by name, their top-ups and usage; and which of
    them were warned in some period (``warned_period`` set)."""

    configurations: list[Configuration]
    topups: dict[str, list[TopUp]]
    usage: dict[str, list[UsageTotal]]
    warned: frozenset[str] = frozenset()


class QuotaPagesStore(ConfigurationsStore):
    """Configurations read for quota decisions: in pages of row ids, or by name."""

    def quota_pages(self, size: int = QUOTA_PAGE_SIZE) -> Iterator[QuotaPage]:
        """Every configuration once, in row id order, ``size`` at a time. Each page reads one
        id range (keyset, not OFFSET: the last page costs what the first does). One added
        during the pass may be left out: the next pass judges it."""
        after = 0
        while True:
            rows = self._rows(
                self._CONFIG_SELECT + " WHERE c.id > ? ORDER BY c.id LIMIT ?", (after, size)
            )
            if not rows:
                return
            first, after = int(rows[0][0]), int(rows[-1][0])
            where, span = "configuration_id BETWEEN ? AND ?", (first, after)
            warned = self._rows(
                "SELECT name FROM configurations "
                "WHERE warned_period IS NOT NULL AND id BETWEEN ? AND ?",
                span,
            )
            yield QuotaPage(
                self._configs_from_rows(rows, every=False, placements=False),
                self._page_topups(f"t.{where}", span),
                self._page_usage(f"u.{where}", span),
                frozenset(r[0] for r in warned),
            )

    def quota_page_of(self, configurations: Sequence[Configuration]) -> QuotaPage:
        """The top-ups and usage of these configurations only."""
        topups: dict[str, list[TopUp]] = {}
        usage: dict[str, list[UsageTotal]] = {}
        for chunk, marks in self._in_chunks(c.name for c in configurations):
            where = f"c.name IN ({marks})"
            topups.update(self._page_topups(where, chunk))
            usage.update(self._page_usage(where, chunk))
        return QuotaPage(list(configurations), topups, usage)

    def _page_topups(self, where: str, params: Sequence[Any]) -> dict[str, list[TopUp]]:
        topups: dict[str, list[TopUp]] = {}
        sql = f"{self._TOPUP_SELECT} WHERE {where} ORDER BY t.purchased_on, t.invoice"
        for r in self._rows(sql, params):
            topups.setdefault(r[1], []).append(
                TopUp(r[0], r[1], r[2], int(r[3]), stored_date(r[4]) or date.min)
            )
        return topups

    def _page_usage(self, where: str, params: Sequence[Any]) -> dict[str, list[UsageTotal]]:
        usage: dict[str, list[UsageTotal]] = {}
        for r in self._rows(
            "SELECT c.name, u.period_start, u.rx_bytes, u.tx_bytes FROM usage_totals u "
            f"JOIN configurations c ON c.id = u.configuration_id WHERE {where} "
            "ORDER BY c.name, u.period_start",
            params,
        ):
            usage.setdefault(r[0], []).append(
                UsageTotal(r[0], stored_date(r[1]) or date.min, int(r[2]), int(r[3]))
            )
        return usage
