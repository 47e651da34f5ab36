"""Top-ups in bulk from a billing export: all lines checked first, then applied in one
transaction, idempotent per invoice (a re-run grants nothing again and says so per line)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from orchestrator.core.models import TopUp
from orchestrator.core.topup_batch import BadLine, TopUpLine, parse_batch
from orchestrator.errors import UsageError
from orchestrator.service.context import Fleet


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
    def __init__(self, source: str, bad: list[BadLine]) -> None:
        self.bad = bad
        super().__init__(
            f"{source}: {len(bad)} bad line(s), nothing applied: "
            + "; ".join(str(b) for b in bad[:20])
        )


def topup_batch(
    fleet: Fleet, text: str, source: str, today: date | None = None
) -> list[LineOutcome]:
    lines, bad = parse_batch(text)
    store = fleet.store
    plans = {p.name: p for p in store.plans()}
    with store.transaction():
        known = {c.name for c in store.configurations()}
        checked: list[tuple[TopUpLine, int]] = []
        for line in lines:
            if line.configuration not in known:
                bad.append(BadLine(line.line, f"no configuration {line.configuration!r}"))
                continue
            if line.plan is not None and line.plan not in plans:
                bad.append(BadLine(line.line, f"no plan {line.plan!r}"))
                continue
            granted = plans[line.plan].quota_bytes if line.plan else line.bytes_granted
            assert granted is not None
            earlier = store.topup(line.invoice)
            if earlier is not None and (earlier.configuration, earlier.bytes_granted) != (
                line.configuration,
                granted,
            ):
                bad.append(
                    BadLine(
                        line.line,
                        f"invoice {line.invoice!r} was recorded before for "
                        f"{earlier.configuration} with {earlier.bytes_granted} bytes",
                    )
                )
                continue
            checked.append((line, granted))
        if bad:
            raise BatchRejected(source, sorted(bad, key=lambda b: b.line))
        outcomes = []
        for line, granted in checked:
            topup, created = store.add_topup(
                TopUp(line.invoice, line.configuration, line.amount, granted, today or date.today())
            )
            outcomes.append(
                LineOutcome(line.line, topup.invoice, line.configuration, granted, created)
            )
    return outcomes
