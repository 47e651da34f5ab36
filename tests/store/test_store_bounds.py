"""Byte totals at the edge of the store's 64-bit integers, on SQLite and PostgreSQL: a top-up
that would carry a configuration's granted total past 2^63-1 is refused whole (exit 2), and
`usage check` still checks (and flags) totals that outgrew 64 bits behind the store's back."""

from __future__ import annotations

from datetime import date

import pytest

from orchestrator.adapters.store import SqlStore
from orchestrator.core.input_limits import MAX_BYTES
from orchestrator.core.models import TopUp
from orchestrator.errors import ExitCode, UsageError
from orchestrator.service.billing import BatchRejected, topup_batch
from orchestrator.service.context import Fleet
from orchestrator.service.peers import TopUpConflict, topup
from orchestrator.service.usage import usage_check
from tests.store.test_store import seed

HALF = 2**62 + 2**61  # two of these are past 2^63 - 1


def fleet_of(store: SqlStore) -> Fleet:
    return Fleet(settings=None, store=store, secrets=None, writes=True)  # type: ignore[arg-type]


def test_a_top_up_past_64_bits_is_refused_and_grants_nothing(store: SqlStore) -> None:
    seed(store)
    fleet = fleet_of(store)
    topup(fleet, "bob-1", invoice="I-1", amount="1", bytes_granted=HALF)
    with pytest.raises(UsageError, match="past 9223372036854775807; nothing granted"):
        topup(fleet, "bob-1", invoice="I-2", amount="1", bytes_granted=HALF)
    with pytest.raises(UsageError, match="0 to 9223372036854775807"):
        topup(fleet, "bob-1", invoice="I-3", amount="1", bytes_granted=MAX_BYTES + 1)
    batch = "".join(
        f'{{"configuration": "alice-1", "amount": "1", "invoice": "{invoice}", "bytes": {HALF}}}\n'
        for invoice in ("B-1", "B-2")
    )
    with pytest.raises(BatchRejected) as raised:
        topup_batch(fleet, batch, "billing.jsonl")
    assert str(raised.value) == (
        f"billing.jsonl: 1 bad line(s), nothing applied: billing.jsonl:2: bytes: {HALF}: would "
        f"bring the configuration's granted total to {2 * HALF} bytes, past {MAX_BYTES}"
    )
    assert raised.value.exit_code == ExitCode.USAGE
    assert store.running_totals().granted == {"alice-1": 0, "bob-1": HALF}
    assert store.topup("B-1") is None and store.topup("I-2") is None
    assert usage_check(fleet) == []


def test_a_single_top_up_recorded_with_other_fields_is_a_conflict(store: SqlStore) -> None:
    seed(store)
    fleet = fleet_of(store)
    topup(fleet, "bob-1", invoice="INV-7", amount="4.99", bytes_granted=1000)
    # The same purchase again: nothing granted, and not an error.
    assert topup(fleet, "bob-1", invoice="INV-7", amount="4.990", bytes_granted=1000) == (
        store.topup("INV-7"),
        False,
    )
    for kwargs, differs in (
        ({"amount": "5.99", "bytes_granted": 1000}, "amount 4.99 (now 5.99)"),
        ({"amount": "4.99", "bytes_granted": 2000}, "bytes 1000 (now 2000)"),
        ({"amount": "4.99", "plan": "basic"}, f"bytes 1000 (now {10 * 2**30})"),
    ):
        with pytest.raises(TopUpConflict) as raised:
            topup(fleet, "bob-1", invoice="INV-7", **kwargs)  # type: ignore[arg-type]
        assert str(raised.value) == (
            f"invoice INV-7 was recorded before with {differs}; nothing granted"
        )
        assert raised.value.exit_code == ExitCode.USAGE
    with pytest.raises(TopUpConflict, match=r"configuration bob-1 \(now alice-1\)"):
        topup(fleet, "alice-1", invoice="INV-7", amount="4.99", bytes_granted=1000)
    assert store.running_totals().granted == {"alice-1": 0, "bob-1": 1000}


def test_usage_check_checks_totals_past_64_bits_instead_of_failing(store: SqlStore) -> None:
    seed(store)
    fleet = fleet_of(store)
    # Rows written behind the store's back (or by an older wgfleet): their sums pass 2^63 - 1,
    # which SQLite's SUM and PostgreSQL's bigint addition would refuse.
    for invoice in ("X-1", "X-2"):
        store.db.execute(
            "INSERT INTO topups (invoice, configuration_id, amount, bytes_granted, purchased_on) "
            f"SELECT '{invoice}', id, '1', {HALF}, '2026-01-01' FROM configurations "
            "WHERE name = 'bob-1'"
        )
    store.db.execute(
        "INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, tx_bytes) "
        f"SELECT id, '2026-01-01', {MAX_BYTES}, {MAX_BYTES} FROM configurations"
    )
    found = {(m.subject, m.kind, m.stored, m.recomputed) for m in usage_check(fleet)}
    assert found == {("bob-1", "granted", 0, 2 * HALF), ("store", "used", 0, 4 * MAX_BYTES)}
    assert store.topups("bob-1") == [
        TopUp("X-1", "bob-1", "1", HALF, date(2026, 1, 1)),
        TopUp("X-2", "bob-1", "1", HALF, date(2026, 1, 1)),
    ]
