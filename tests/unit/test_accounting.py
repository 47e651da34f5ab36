"""Accounting is exact across restarts, re-adds, replays and several nodes (property-based)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.accounting import (
    LastSeen,
    Sample,
    account_node,
    after_removal,
    counter_delta,
)
from orchestrator.core.models import (
    Configuration,
    DisabledReason,
    Plan,
    ResetRule,
    TopUp,
    UsageTotal,
)
from orchestrator.core.quota import NEVER_RESETS, enforce, period_start, quota_status

KEY = "k" * 43 + "="


def test_delta_rules() -> None:
    assert counter_delta(None, "e1", 100, 50) == (100, 50)
    assert counter_delta(LastSeen("e1", 100, 50), "e1", 150, 70) == (50, 20)
    assert counter_delta(LastSeen("e1", 100, 50), "e1", 100, 50) == (0, 0)  # replay
    assert counter_delta(LastSeen("e1", 100, 50), "e2", 30, 5) == (30, 5)  # restart
    assert counter_delta(LastSeen("e1", 100, 50), "e1", 30, 60) == (30, 60)  # went backwards


Op = st.one_of(
    st.tuples(st.just("traffic"), st.integers(0, 10**9), st.integers(0, 10**9)),
    st.tuples(st.just("sync"), st.just(0), st.just(0)),
    st.tuples(st.just("replay"), st.just(0), st.just(0)),
    st.tuples(st.just("restart"), st.just(0), st.just(0)),
    st.tuples(st.just("readd"), st.just(0), st.just(0)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(Op, max_size=40))
def test_every_observed_byte_counts_exactly_once(ops: list[tuple[str, int, int]]) -> None:
    epoch_n = 0
    rx = tx = 0  # the node's live counters
    last: dict[str, LastSeen] = {}
    accounted = [0, 0]
    expected = [0, 0]
    observed = (0, 0)  # counters as last observed since they last restarted

    def observe(epoch: str, cur_rx: int, cur_tx: int) -> None:
        nonlocal last, observed
        result = account_node(epoch, [Sample(KEY, cur_rx, cur_tx)], last, {KEY: "alice-1"})
        add = result.usage.get("alice-1", (0, 0))
        accounted[0] += add[0]
        accounted[1] += add[1]
        last = {**last, **result.last_seen}
        expected[0] += cur_rx - observed[0]
        expected[1] += cur_tx - observed[1]
        observed = (cur_rx, cur_tx)

    for kind, a, b in ops:
        epoch = f"e{epoch_n}"
        if kind == "traffic":
            rx, tx = rx + a, tx + b
        elif kind == "sync":
            observe(epoch, rx, tx)
        elif kind == "replay":
            # The same node output applied twice in a row (a retried run) adds nothing the 2nd time.
            observe(epoch, rx, tx)
            again = account_node(epoch, [Sample(KEY, rx, tx)], last, {KEY: "alice-1"})
            assert again.bytes_added == 0
        elif kind == "restart":
            epoch_n += 1
            rx = tx = 0
            observed = (0, 0)
        elif kind == "readd":
            observe(epoch, rx, tx)  # the push reads counters just before it removes the peer
            last = {**last, KEY: after_removal(epoch)}
            rx = tx = 0
            observed = (0, 0)
    assert accounted == expected


def test_the_same_configuration_on_two_nodes_sums() -> None:
    owners = {KEY: "alice-1"}
    one = account_node("a", [Sample(KEY, 100, 10)], {}, owners)
    two = account_node("b", [Sample(KEY, 7, 3)], {}, owners)
    assert one.usage["alice-1"] == (100, 10) and two.usage["alice-1"] == (7, 3)


def test_unknown_peers_are_tracked_but_never_billed() -> None:
    other = "o" * 43 + "="
    result = account_node("a", [Sample(other, 5, 5)], {}, {})
    assert result.usage == {} and result.unknown_keys == (other,)
    assert result.last_seen[other] == LastSeen("a", 5, 5)


def test_billing_periods() -> None:
    monthly = Plan("m", 100, ResetRule.MONTHLY, anchor_day=15)
    assert period_start(monthly, date(2026, 11, 23)) == date(2026, 11, 15)
    assert period_start(monthly, date(2026, 11, 14)) == date(2026, 10, 15)
    assert period_start(monthly, date(2026, 1, 3)) == date(2025, 12, 15)
    assert period_start(Plan("n", 100), date(2026, 1, 3)) == NEVER_RESETS
    assert period_start(None, date(2026, 1, 3)) == NEVER_RESETS


def cfg(name: str, **kw: object) -> Configuration:
    return Configuration(name, "alice", "k", None, **kw)  # type: ignore[arg-type]


def test_allowance_and_enforcement() -> None:
    today = date(2026, 11, 23)
    monthly = Plan("m", 1000, ResetRule.MONTHLY, anchor_day=1)
    statuses = {
        "fixed": quota_status(
            cfg("fixed", quota_bytes=100),
            None,
            [TopUp("i1", "fixed", "1", 50, today)],
            [UsageTotal("fixed", NEVER_RESETS, 120, 30)],
            today,
        ),
        "month": quota_status(
            cfg("month", plan="m"),
            monthly,
            [TopUp("i2", "month", "1", 500, date(2026, 10, 3))],
            [
                UsageTotal("month", date(2026, 10, 1), 5000, 0),
                UsageTotal("month", date(2026, 11, 1), 850, 0),
            ],
            today,
        ),
        "free": quota_status(
            cfg("free"), None, [], [UsageTotal("free", NEVER_RESETS, 10**12, 0)], today
        ),
    }
    assert (statuses["fixed"].allowance, statuses["fixed"].used, statuses["fixed"].over) == (
        150,
        150,
        True,
    )
    assert (statuses["month"].allowance, statuses["month"].used) == (
        1000,
        850,
    )  # October's top-up is spent
    assert statuses["free"].allowance is None and not statuses["free"].over
    configs = [
        cfg("fixed", quota_bytes=100),
        cfg("month", plan="m"),
        cfg("free"),
        cfg("back", quota_bytes=10, enabled=False, disabled_reason=DisabledReason.OVER_QUOTA),
        cfg("op", quota_bytes=10, enabled=False, disabled_reason=DisabledReason.OPERATOR),
    ]
    statuses["back"] = quota_status(
        configs[3],
        None,
        [TopUp("i3", "back", "1", 1000, today)],
        [UsageTotal("back", NEVER_RESETS, 20, 0)],
        today,
    )
    statuses["op"] = quota_status(
        configs[4], None, [TopUp("i4", "op", "1", 1000, today)], [], today
    )
    decision = enforce(configs, statuses, warn_ratio=0.8)
    assert decision.disable == ("fixed",)
    assert decision.enable == ("back",)  # an operator's disable is never undone by quota
    assert decision.warn == ("month",)


def test_last_seen_counters_survive_their_text_form() -> None:
    from orchestrator.core.accounting import (
        PeerCounters,
        decode_counters,
        decode_last_seen,
        encode_counters,
    )

    seen = {"K1=": LastSeen("boot-a", 0, 2**62), "next:K2=": LastSeen("b", 5, 6)}
    assert decode_counters(*encode_counters(PeerCounters.of(seen))).as_dict() == seen
    same_epoch = {"K1=": LastSeen("e", 1, 2), "K2=": LastSeen("e", 3, 4)}
    peers, text = encode_counters(PeerCounters.of(same_epoch))
    assert text.startswith("e\n")  # one epoch for the node when its peers agree
    assert decode_counters(peers, text).as_dict() == same_epoch
    assert decode_counters(*encode_counters(PeerCounters.of({}))).as_dict() == {}
    # Rows written before the peers column (schema 8 to 10) are read as they were written.
    assert decode_counters(None, "K1=\tboot-a\t0\t4611686018427387904") == PeerCounters.of(
        {"K1=": LastSeen("boot-a", 0, 2**62)}
    )
    assert decode_last_seen("") == {}
    with pytest.raises(ValueError, match="each line needs"):
        decode_last_seen("K1=\tboot-a\t5")
    with pytest.raises(ValueError, match="do not match"):
        decode_counters("K1=\nK2=", "e\n1\n2")


def test_sample_columns_read_like_samples_and_account_the_same() -> None:
    from orchestrator.core.accounting import SampleColumns, account_node

    columns = SampleColumns(["K1=", "K2="], [5, 7], [6, 8])
    samples = (Sample("K1=", 5, 6), Sample("K2=", 7, 8))
    assert columns == samples and len(columns) == 2
    assert columns[1] == Sample("K2=", 7, 8) and columns[1].public_key == "K2="
    assert columns[:1] == samples[:1]
    assert all(isinstance(s, Sample) for s in columns)
    owner = {"K1=": "a", "K2=": "b"}
    last = {"K1=": LastSeen("e", 1, 1)}
    assert account_node("e", columns, last, owner) == account_node("e", samples, last, owner)
    with pytest.raises(ValueError, match="different lengths"):
        SampleColumns(["K1="], [1, 2], [3])


# --- columns: the sync's path against the per-peer rules ---------------------------------------

POOL = ["A" * 43 + "=", "B" * 43 + "=", "C" * 43 + "=", "next:" + "A" * 43 + "=", "D" * 43 + "="]
# D's owner is unknown (a deleted account's peer); A and next:A bill the same configuration.
OWNERS = {POOL[0]: "alice-1", POOL[1]: "bob-1", POOL[2]: "alice-1"}


def reference_step(
    state: dict[str, LastSeen],
    epoch: str,
    samples: list[Sample],
    removed: bool,
) -> tuple[dict[str, tuple[int, int]], dict[str, LastSeen]]:
    """The rules one peer at a time, as the store applied them before counters were columns."""
    usage: dict[str, tuple[int, int]] = {}
    after = dict(state)
    unknown = []
    for key, rx, tx in samples:
        name = OWNERS.get(key.removeprefix("next:"))
        if name is None:
            unknown.append(key)
            continue
        add = counter_delta(state.get(key), epoch, rx, tx)
        if add != (0, 0):
            old = usage.get(name, (0, 0))
            usage[name] = (old[0] + add[0], old[1] + add[1])
    for key, rx, tx in samples:
        if removed:
            after.pop(key, None)
        else:
            after[key] = LastSeen(epoch, rx, tx)
    if not removed:
        for key in unknown:
            after.pop(key, None)
    return usage, after


Step = st.tuples(
    st.sampled_from(["e1", "e2"]),
    st.permutations(POOL).flatmap(lambda keys: st.integers(0, len(keys)).map(lambda n: keys[:n])),
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=5, max_size=5),
    st.sampled_from(["same order", "as drawn", "removed"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(Step, max_size=12))
def test_columns_follow_the_per_peer_rules_through_the_store_s_text(
    steps: list[tuple[str, list[str], list[tuple[int, int]], str]],
) -> None:
    """Every sync of a node: the same usage and last-seen counters as the per-peer rules, on
    the fast path (the same peers in the same order) and off it, through the stored text."""
    from orchestrator.core.accounting import (
        PeerCounters,
        account_columns,
        decode_counters,
        encode_counters,
        merge_seen,
    )

    state: dict[str, LastSeen] = {}
    stored: PeerCounters | None = None
    for epoch, drawn, counters, how in steps:
        keys = list(drawn)
        if how == "same order" and stored is not None:
            keys = list(stored.keys)  # what a node with unchanged peers answers
        samples = [Sample(k, *counters[i % 5]) for i, k in enumerate(keys)]
        removed = how == "removed"
        expected_usage, state = reference_step(state, epoch, samples, removed)
        result = account_columns(
            epoch,
            keys,
            [s.rx_bytes for s in samples],
            [s.tx_bytes for s in samples],
            stored,
            OWNERS,
        )
        assert result.usage == expected_usage
        assert result.bytes_added == sum(rx + tx for rx, tx in expected_usage.values())
        if removed or not result.unknown_keys:
            merged = merge_seen(stored, result.seen, removed=removed)
        else:
            kept = stored.without(result.unknown_keys) if stored is not None else None
            merged = merge_seen(kept, result.seen.without(result.unknown_keys))
        assert merged.as_dict() == state
        # What the store writes and reads back (a saved row is one the store holds already).
        stored = merged if merged.saved else decode_counters(*encode_counters(merged))
        assert stored.as_dict() == state


def test_a_replay_leaves_the_store_s_row_alone() -> None:
    from orchestrator.core.accounting import (
        PeerCounters,
        account_columns,
        decode_counters,
        encode_counters,
        merge_seen,
    )

    keys = POOL[:3]
    row = decode_counters(*encode_counters(PeerCounters(keys, ["e1"] * 3, [5, 6, 7], [1, 2, 3])))
    assert row.saved
    replay = account_columns("e1", list(keys), [5, 6, 7], [1, 2, 3], row, OWNERS)
    assert replay.usage == {} and merge_seen(row, replay.seen) is row
    moved = account_columns("e1", list(keys), [5, 6, 9], [1, 2, 3], row, OWNERS)
    assert moved.usage == {"alice-1": (2, 0)}
    after = merge_seen(row, moved.seen)
    assert not after.saved and after.stored == row.stored  # the keys' text is reused
    backwards = account_columns("e1", list(keys), [5, 6, 4], [1, 2, 3], row, OWNERS)
    assert backwards.usage == {"alice-1": (4, 3)}  # a counter went backwards: from zero
