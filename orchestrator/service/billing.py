"""Top-ups in bulk from a billing export: all lines checked first, then applied in one
transaction, idempotent per invoice (a re-run grants nothing again and says so per line)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from orchestrator.core.models import TopUp
from orchestrator.core.quoting import sanitize
from orchestrator.core.topup_batch import (
    BadLine,
    TopUpLine,
    granted_total_problem,
    parse_batch,
    recorded_differences,
)
from orchestrator.errors import UsageError
from orchestrator.service.context import Fleet, writes_store
from orchestrator.service.peers import let_back_in

# How many bad lines the one-line error shows (all are in ``BatchRejected.bad``).
SHOWN_BAD_LINES = 20


@dataclass(frozen=True)
class LineOutcome:
    line: int
    invoice: str
    configuration: str
    bytes_granted: int
    created: bool  # False: this invoice was recorded before; nothing granted again

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BatchRejected(UsageError):
    """The batch is refused whole (exit 2): ``bad`` lists every bad line; the message, one
    line, names the file and the first ones as FILE:LINE: FIELD: VALUE: problem."""

    def __init__(self, source: str, bad: list[BadLine]) -> None:
        self.bad = bad
        where = sanitize(source, 300)
        shown = [f"{where}:{str(b).removeprefix('line ')}" for b in bad[:SHOWN_BAD_LINES]]
        more = f"; and {len(bad) - SHOWN_BAD_LINES} more" if len(bad) > SHOWN_BAD_LINES else ""
        super().__init__(
            f"{where}: {len(bad)} bad line(s), nothing applied: " + "; ".join(shown) + more
        )


@writes_store
def topup_batch(
    fleet: Fleet, text: str, source: str, today: date | None = None
) -> list[LineOutcome]:
    lines, bad = parse_batch(text)
    store = fleet.store
    day = today or date.today()
    plans = {p.name: p for p in store.plans()}
    with store.transaction():
        # Store-only (no fleet lock, see writes_store): the rows it grants to are held, so a
        # concurrent sync's cut-off decision and this batch see each other whole.
        store.hold_configurations({line.configuration for line in lines})
        known = {c.name for c in store.configurations()}
        granted_now = store.running_totals().granted
        adding: dict[str, int] = defaultdict(int)
        checked: list[tuple[TopUpLine, int]] = []
        for line in lines:
            if line.configuration not in known:
                bad.append(
                    BadLine(line.line, "no such configuration", "configuration", line.configuration)
                )
                continue
            if line.plan is not None and line.plan not in plans:
                bad.append(BadLine(line.line, "no such plan", "plan", line.plan))
                continue
            granted = plans[line.plan].quota_bytes if line.plan else line.bytes_granted
            assert granted is not None
            earlier = store.topup(line.invoice)
            if earlier is not None:
                differs = recorded_differences(earlier, line.configuration, line.amount, granted)
                if differs:
                    recorded = "was recorded before with " + ", ".join(differs)
                    bad.append(BadLine(line.line, recorded, "invoice", line.invoice))
                    continue
            else:
                current = granted_now.get(line.configuration, 0) + adding[line.configuration]
                overflow = granted_total_problem(current, granted)
                if overflow is not None:
                    if line.plan:
                        bad.append(BadLine(line.line, overflow, "plan", line.plan))
                    else:
                        bad.append(BadLine(line.line, overflow, "bytes", granted))
                    continue
                adding[line.configuration] += granted
            checked.append((line, granted))
        if bad:
            raise BatchRejected(source, sorted(bad, key=lambda b: b.line))
        outcomes = []
        for line, granted in checked:
            topup, created = store.add_topup(
                TopUp(line.invoice, line.configuration, line.amount, granted, day)
            )
            outcomes.append(
                LineOutcome(line.line, topup.invoice, line.configuration, granted, created)
            )
        let_back_in(fleet, sorted({o.configuration for o in outcomes if o.created}), day)
    return outcomes
