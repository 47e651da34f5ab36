"""The rules that decide whether a node's counters are believed (core.node_trust): an honest
node is never refused, whatever happens to it, and each way of tampering is."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.accounting import PeerCounters, account_columns, merge_seen
from orchestrator.core.node_trust import NodeTrust, foreign_keys, foreign_problem, regression

KEYS = ["A" * 43 + "=", "B" * 43 + "=", "C" * 43 + "="]
OWNERS = {KEYS[0]: 0, KEYS[1]: 1, KEYS[2]: 2, "D" * 43 + "=": 3}


def counters(epoch: str, **peers: tuple[int, int]) -> PeerCounters:
    keys = [KEYS["abc".index(name)] for name in peers]
    rx = [pair[0] for pair in peers.values()]
    tx = [pair[1] for pair in peers.values()]
    return PeerCounters(keys, [epoch] * len(keys), rx, tx)


def check(epoch: str, now: PeerCounters, last: PeerCounters | None, **kw: object) -> str | None:
    options = {"overlap": False, "complete": True, **kw}
    return regression(epoch, now.keys, now.rx, now.tx, last, **options)  # type: ignore[arg-type]


def test_keys_placed_elsewhere_or_nowhere_are_foreign() -> None:
    trust = NodeTrust(frozenset({0, 1}), frozenset({KEYS[2]}))
    assert foreign_keys(KEYS[:2], OWNERS, trust) == []
    assert foreign_keys(KEYS, OWNERS, trust) == []  # C's removal is pending here
    assert foreign_keys(["next:" + k for k in KEYS], OWNERS, trust) == []
    stranger = "E" * 43 + "="
    assert foreign_keys([KEYS[0], "D" * 43 + "=", stranger], OWNERS, trust) == [
        "D" * 43 + "=",
        stranger,
    ]
    assert "placed on other nodes only" in foreign_problem(["D" * 43 + "="], OWNERS)
    assert "unknown to the store" in foreign_problem([stranger, KEYS[0]], OWNERS)
    assert "(and 1 more)" in foreign_problem([stranger, KEYS[0]], OWNERS)
    # A key owned only while it leaves other nodes is no longer believed where its
    # configuration is still placed.
    leaving = NodeTrust(frozenset({0, 1}), frozenset(), frozenset({KEYS[1]}))
    assert foreign_keys(KEYS[:2], OWNERS, leaving) == [KEYS[1]]
    pending_here = NodeTrust(frozenset({0}), frozenset({KEYS[1]}), frozenset({KEYS[1]}))
    assert foreign_keys(KEYS[:2], OWNERS, pending_here) == []


def test_missing_and_backwards_within_an_epoch_are_refused() -> None:
    last = counters("e", a=(10, 10), b=(5, 5))
    assert check("e", counters("e", a=(11, 10), b=(5, 6)), last) is None
    assert "went backwards" in (check("e", counters("e", a=(9, 10), b=(5, 5)), last) or "")
    assert "went backwards" in (check("e", counters("e", b=(5, 5), a=(10, 9)), last) or "")
    assert "missing" in (check("e", counters("e", a=(11, 10)), last) or "")
    assert check("e", counters("e", a=(11, 10)), last, excused={KEYS[1]}) is None
    assert check("e", counters("e", a=(11, 10)), last, complete=False) is None
    assert check("e2", counters("e2", a=(0, 0)), last) is None  # a new epoch resets
    # The overlap's keys are held against the overlap's section only.
    both = PeerCounters([KEYS[0], "next:" + KEYS[0]], ["e", "x"], [10, 3], [10, 3])
    assert check("x", PeerCounters([], [], [], []), both, overlap=True) is not None
    assert check("e", counters("e", a=(10, 10)), both) is None
    assert (
        check("x", PeerCounters(["next:" + KEYS[0]], ["x"], [2], [3]), both, overlap=True)
        is not None
    )


Op = st.one_of(
    st.tuples(st.just("traffic"), st.integers(0, 2), st.integers(0, 10**6)),
    st.tuples(st.just("sync"), st.just(0), st.just(0)),
    st.tuples(st.just("restart"), st.just(0), st.just(0)),
    st.tuples(st.just("remove"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("readd"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("omit"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("lower"), st.integers(0, 2), st.integers(1, 10)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(Op, max_size=50))
def test_an_honest_node_is_always_believed_and_a_tampered_answer_never(
    ops: list[tuple[str, int, int]],
) -> None:
    """A node's live peers, restarts and the controller's own removals and re-adds: every
    honest answer passes and counts each byte once; an answer leaving out a peer seen in the
    epoch, or lowering one's counter, is refused and changes nothing."""
    epoch = 0
    live: dict[str, list[int]] = {k: [0, 0] for k in KEYS}
    last: PeerCounters | None = None
    billed = 0
    passed = 0  # bytes that went through the node's peers

    def unaccounted() -> int:
        """Bytes on the node's live counters that no accounted answer covered yet."""
        total = sum(sum(v) for v in live.values())
        if last is not None:
            total -= sum(
                r + t
                for k, e, r, t in zip(last.keys, last.epochs, last.rx, last.tx, strict=True)
                if e == f"e{epoch}" and k in live
            )
        return total

    def answer() -> PeerCounters:
        keys = sorted(live)
        return PeerCounters(
            keys, [f"e{epoch}"] * len(keys), [live[k][0] for k in keys], [live[k][1] for k in keys]
        )

    for kind, index, amount in ops:
        key = KEYS[index]
        if kind == "traffic" and key in live:
            live[key][0] += amount
            live[key][1] += amount // 2
            passed += amount + amount // 2
        elif kind == "sync":
            now = answer()
            assert check(f"e{epoch}", now, last) is None
            result = account_columns(f"e{epoch}", now.keys, now.rx, now.tx, last, OWNERS)
            billed += result.bytes_added
            last = merge_seen(last, result.seen)
        elif kind == "restart":
            passed -= unaccounted()  # a restart zeroes what no one read: lost to everyone
            epoch += 1
            live = {k: [0, 0] for k in live}
        elif kind == "remove" and key in live:
            # The push reads the peer's last counters as it removes it (a removed observation).
            gone = PeerCounters([key], [f"e{epoch}"], [live[key][0]], [live[key][1]])
            assert check(f"e{epoch}", gone, last, complete=False) is None
            result = account_columns(f"e{epoch}", gone.keys, gone.rx, gone.tx, last, OWNERS)
            billed += result.bytes_added
            last = merge_seen(last, result.seen, removed=True)
            del live[key]
        elif kind == "readd" and key not in live:
            live[key] = [0, 0]
        elif kind in ("omit", "lower") and last is not None:
            now = answer()
            seen = dict(zip(last.keys, zip(last.epochs, last.rx, strict=True), strict=True))
            if key not in now.keys or seen.get(key, ("", 0))[0] != f"e{epoch}":
                continue  # not a peer the controller saw in this epoch: nothing to tamper with
            i = now.keys.index(key)
            if kind == "omit":
                del now.keys[i], now.epochs[i], now.rx[i], now.tx[i]
            else:
                now.rx[i] = seen[key][1] - amount
                if now.rx[i] < 0:
                    continue
            assert check(f"e{epoch}", now, last) is not None
    # What passed since the last answer the controller accounted is still on the node.
    assert billed + unaccounted() == passed
