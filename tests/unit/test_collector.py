from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.accounting import Sample
from orchestrator.core.collector import CounterParseError, CounterReport, parse_counters
from tests.unit.refusals import refusal

A = "x21CkFo1pEax5ixfvV6c0roMvHkrrgKxaC+71Ei7GBU="
B = "/EgmzBZvSAGJh6HOLhIaSwal/eseBK1vj+MdGgG72Ao="


def test_a_good_answer() -> None:
    report = parse_counters(f"epoch 3f2a-77\n{A}\t660\t604\n{B}\t0\t0\n")
    assert report.epoch == "3f2a-77"
    assert [(s.public_key, s.rx_bytes, s.tx_bytes) for s in report.samples] == [
        (A, 660, 604),
        (B, 0, 0),
    ]
    assert parse_counters("epoch none\n").samples == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: empty answer"),
        (f"{A}\t1\t2\n", "line 1: expected 'epoch TOKEN'"),
        ("epoch 2026-11-23 12:00\n", "line 1: expected 'epoch TOKEN'"),
        (
            f"epoch e\n{A}\t1\t2\t198.18.8.1:51820\n",
            "line 2: expected 3 tab-separated fields, got 4",
        ),
        (f"epoch e\n{A}\t1\n", "line 2: expected 3 tab-separated fields, got 2"),
        ("epoch e\nnot-a-key\t1\t2\n", "line 2: 'not-a-key' is not a WireGuard public key"),
        (f"epoch e\n{A}\t-1\t2\n", "line 2: rx '-1' is not a byte count"),
        (f"epoch e\n{A}\t1\t2.5\n", "line 2: tx '2.5' is not a byte count"),
        (f"epoch e\n{A}\t01\t2\n", "line 2: rx '01' is not a byte count"),
        (f"epoch e\n{A}\t{2**64}\t2\n", "line 2: rx '18446744073709551616' is out of range"),
        # Digits other than ASCII, which str.isdigit and int() would take as numbers.
        (f"epoch e\n{A}\t\u0661\u0662\u0663\t2\n", "line 2: rx '\u0661\u0662\u0663' is not a"),
        (f"epoch e\n{A}\t1\t\uff12\n", "line 2: tx '\uff12' is not a byte count"),
        (f"epoch e\n{A}\t\u09e7\t2\n", "line 2: rx '\u09e7' is not a byte count"),
        (f"epoch e\n{A}\t\U0001d7ff\t2\n", "line 2: rx '\U0001d7ff' is not a byte count"),
        (f"epoch e\n{A}\t+5\t2\n", "line 2: rx '+5' is not a byte count"),
        (f"epoch e\n{A}\t1_000\t2\n", "line 2: rx '1_000' is not a byte count"),
        (f"epoch e\n{A}\t 5\t2\n", "line 2: rx ' 5' is not a byte count"),
        # Far past any counter: refused by its length, before int() would choke on it.
        (f"epoch e\n{A}\t{'9' * 5000}\t2\n", "line 2: rx '999999999999999999999999' is out"),
        (f"epoch e\n{A}\t{2**63}\t2\n", "line 2: rx '9223372036854775808' is out of range"),
        (f"epoch e\n{A}\t1\t2\n{A}\t3\t4\n", "line 3: the same peer twice"),
        (f"epoch e\n{A}\t1\t2\n\n", "line 3: expected 3 tab-separated fields, got 1"),
    ],
)
def test_anything_unexpected_refuses_the_whole_answer(text: str, message: str) -> None:
    assert refusal(CounterParseError, parse_counters, text).startswith(message)


def test_the_whole_section_match_and_the_line_walk_agree() -> None:
    """The C-speed match of an answer and the line-by-line walk accept exactly the same."""
    from orchestrator.core.collector import _fast_report

    key = "A" * 42 + "E="
    other = "B" * 42 + "g="
    good = f"epoch e1\n{key}\t0\t1\n{other}\t123456789012345678\t7\n"
    assert _fast_report(good) == CounterReport(
        "e1", (Sample(key, 0, 1), Sample(other, 123456789012345678, 7))
    )
    assert _fast_report("epoch e1\n") == CounterReport("e1", ())
    overlap = f"epoch e1\n{key}\t0\t1\ninterface wg1\nepoch e2\n{other}\t5\t6\n"
    assert (
        _fast_report(overlap)
        == parse_counters(overlap)
        == CounterReport(
            "e1",
            (Sample(key, 0, 1),),
            overlap=CounterReport("e2", (Sample(other, 5, 6),)),
            overlap_interface="wg1",
        )
    )
    for bad in (
        f"{key}\t01\t1",  # a leading zero
        f"{key}\t1",  # a field missing
        f"{key}\t1\t1\t1",  # a field too many
        f"{key[:-2]}B=\t1\t1",  # the last key character carries bits a key cannot have
        f"{key}\t1\t1\n{key}\t2\t2",  # the same peer twice
        f"{key}\t1\t1 ",  # trailing space
        f"{key}\t\uff11\t1",  # a non-ASCII digit (fullwidth one)
        f"{key}\t9223372036854775807\t1",  # 19 digits: left to the line walk
        f"{key}\t1\t1\n\n",  # an empty line
    ):
        assert _fast_report(f"epoch e1\n{bad}\n") is None, bad
    assert _fast_report("epoch e1") is None  # no final newline: the walk accepts it
    assert parse_counters("epoch e1") == CounterReport("e1", ())
    for bad_head in ("epoch e1 x\n", "epoch \n", "Epoch e1\n", "epoch e1\ninterface wg1\n"):
        assert _fast_report(bad_head) is None, bad_head
    # what the match leaves to the walk is still accepted when it is right...
    big = parse_counters(f"epoch e1\n{key}\t9223372036854775807\t1\n")
    assert big.samples == (Sample(key, 2**63 - 1, 1),)
    # ...and refused with the line named when it is not
    with pytest.raises(CounterParseError, match="line 2: rx '9223372036854775808' is out of range"):
        parse_counters(f"epoch e1\n{key}\t9223372036854775808\t1\n")


TOKENS = ["epoch e\n", "interface wg0n\n", A, B, "\t", "\n", "0", "7", "\u0663", "\uff11"]
TOKENS += ["99999999999999999999", "9223372036854775807", "-", " ", "x"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS) | st.characters(), max_size=40).map("".join))
def test_any_answer_is_a_report_or_a_named_refusal(text: str) -> None:
    """Whatever a node prints, the parser gives a report or a CounterParseError (a failed
    node), never another exception that would take the whole sync down."""
    try:
        report = parse_counters(text)
    except CounterParseError:
        return
    for section in (report, report.overlap):
        if section is not None:
            assert all(0 <= s.rx_bytes < 2**63 and 0 <= s.tx_bytes < 2**63 for s in section.samples)
