"""Hostile billing batches are refused whole, naming file, line, field and value, exit 2, never
a traceback: huge or non-ASCII numbers, missing or extra columns, giant fields and lines,
invalid UTF-8, control characters; a leading byte order mark is fine. A single `topup` whose
invoice was recorded with other fields is a conflict (exit 2), not "already recorded"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core.input_limits import TOPUP_BATCH_MAX_BYTES
from orchestrator.core.topup_batch import parse_batch
from tests.unit.test_topup_batch import granted, store_with_config  # noqa: F401 - fixture

HEADER = "configuration,amount,invoice,bytes,plan\n"


def jsonl(**fields: object) -> str:
    import json

    base: dict[str, object] = {"configuration": "a-1", "amount": "4.99", "invoice": "I-1"}
    return json.dumps({**base, **fields}) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (jsonl(bytes=10**30), "line 1: bytes: 1000000000000000000000000000000: a whole number"),
        (jsonl(bytes=2**63), "line 1: bytes: 9223372036854775808: at most 9223372036854775807"),
        (
            jsonl(bytes="\u0661\u0662\u0663"),
            "line 1: bytes: '\u0661\u0662\u0663': a whole number of bytes (ASCII",
        ),
        (
            jsonl(bytes="\uff11\uff12"),
            "line 1: bytes: '\uff11\uff12': a whole number of bytes (ASCII",
        ),
        (jsonl(bytes="+5"), "line 1: bytes: '+5': a whole number"),
        (jsonl(bytes=1.0), "line 1: bytes: 1.0: a whole number of bytes"),
        (jsonl(bytes=True), "line 1: bytes: True: a whole number of bytes"),
        (
            jsonl(amount="\u0664.\u0669\u0669", bytes=1),
            "line 1: amount: '\u0664.\u0669\u0669': a decimal",
        ),
        (jsonl(invoice=True, bytes=1), "line 1: invoice: True: letters, digits"),
        (jsonl(invoice="I-1\n", bytes=1), "line 1: invoice: 'I-1\\n': letters, digits"),
        (jsonl(configuration="a-1\u202e", bytes=1), "line 1: configuration: 'a-1\\u202e'"),
        (jsonl(plan=["basic"]), "line 1: plan: ['basic']: lowercase letters"),
        (jsonl(bytes=10**900), "line 1: bytes: <a number of 2990 bits>: a whole number"),
        ('{"bytes": 1' + "0" * 5000 + "}\n", "line 1: longer than 1024 characters"),
        ("[" * 1000 + "\n", "line 1: not JSON: maximum recursion depth exceeded"),
        (jsonl(bytes=1).replace("I-1", "I" * 2000), "line 1: longer than 1024 characters"),
        (jsonl(bytes=1).replace("a-1", "a-1\\u0000"), "line 1: configuration: 'a-1\\x00'"),
        (jsonl(bytes=1) + "\x00\n", "line 2: control character U+0000"),
        (HEADER + "a-1,4.99,I-1,1000,,extra\n", "line 2: 6 values, but the header names 5"),
        (HEADER + "a-1,4.99\n", "line 2: 2 values, but the header names 5 columns"),
        (
            "configuration,amount,invoice,bytes,bytes\na-1,1,I,1,2\n",
            "line 1: header: 'configuration,amount,invoice,bytes,bytes': a CSV header names "
            "configuration, amount, invoice and bytes and/or plan, each once: repeated bytes",
        ),
        ("configuration,amount,bytes\na-1,1,1\n", "line 1: header: 'configuration,amount,bytes'"),
        (HEADER + "a-1,4.99,I-1," + "9" * 1100 + ",\n", "line 2: longer than 1024 characters"),
        (
            HEADER + "a-1,4.99,I-1,\u0661,\n",
            "line 2: bytes: '\u0661': a whole number of bytes (ASCII",
        ),
        (HEADER + "a-1,4.99,I-1,1000,\r\na-1,1,I-2,1\r\n", "line 3: 4 values, but the header"),
    ],
    ids=lambda value: value[:30].replace("\n", "|") if isinstance(value, str) else None,
)
def test_hostile_lines_are_named(text: str, expected: str) -> None:
    good, bad = parse_batch(text)
    assert good == [] or len(bad) == 1
    assert bad and str(bad[0]).startswith(expected), bad
    assert all("\n" not in str(b) and len(str(b)) < 400 for b in bad)


def test_a_leading_byte_order_mark_and_crlf_lines_are_fine() -> None:
    good, bad = parse_batch("\ufeff" + HEADER.replace("\n", "\r\n") + "a-1,4.99,I-1,1000,\r\n")
    assert bad == [] and [(g.configuration, g.bytes_granted) for g in good] == [("a-1", 1000)]


def wgfleet(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        capture_output=True,
        input=stdin,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "WGFLEET_CONFIG"},
    )


def test_bad_batches_are_one_line_and_exit_2_through_the_command(
    store_with_config: Path,  # noqa: F811
) -> None:
    invalid = store_with_config / "latin1.csv"
    invalid.write_bytes(HEADER.encode() + b"ann-1,4.99,I-1,1000,\nann-1,4.99,I-\xe9,1,\n")
    huge = store_with_config / "huge.csv"
    with huge.open("wb") as handle:
        handle.truncate(TOPUP_BATCH_MAX_BYTES + 1)
    short = store_with_config / "short.csv"
    short.write_text(HEADER + "ann-1,4.99,I-1,1000,\nann-1,4.99\n")
    cases = [
        (["topup", "--from", str(invalid)], None, f"{invalid}:3: (file): b'\\xe9': not UTF-8"),
        (["topup", "--from", "-"], b"\xff\xfe{}", "-:1: (file): b'\\xff': not UTF-8 text"),
        (
            ["topup", "--from", str(huge)],
            None,
            f"{huge}: (file): '67108865 bytes': larger than 64 MiB, the bound for a top-up batch",
        ),
        (
            ["topup", "--from", str(short)],
            None,
            f"{short}: 1 bad line(s), nothing applied: {short}:3: 2 values, but the header "
            "names 5 columns",
        ),
    ]
    for argv, stdin, expected in cases:
        result = wgfleet(*argv, stdin=stdin)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"wgfleet: error: {expected}"), lines
        assert result.stdout == b""
    assert granted("ann-1") == 0


def test_a_single_top_up_with_another_amount_is_a_conflict_through_the_command(
    store_with_config: Path,  # noqa: F811
) -> None:
    first = wgfleet("topup", "ann-1", "--bytes", "1000", "--amount", "4.99", "--invoice", "T-1")
    assert first.returncode == 0, first.stderr
    again = wgfleet("topup", "ann-1", "--bytes", "1000", "--amount", "4.99", "--invoice", "T-1")
    assert again.returncode == 0 and b"already recorded" in again.stdout
    other = wgfleet("topup", "ann-1", "--bytes", "5000", "--amount", "9.99", "--invoice", "T-1")
    assert other.returncode == 2
    assert other.stderr.decode().splitlines() == [
        "wgfleet: error: invoice T-1 was recorded before with amount 4.99 (now 9.99), "
        "bytes 1000 (now 5000); nothing granted"
    ]
    arabic = wgfleet(
        "topup", "ann-1", "--bytes", "\u0661\u0662", "--amount", "1", "--invoice", "T-2"
    )
    assert (
        arabic.returncode == 2
        and b"a size such as 10GiB, 500MB or a number of bytes" in arabic.stderr
    )
    assert granted("ann-1") == 1000
