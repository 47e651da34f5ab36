"""Top-ups from billing in bulk: every line checked first, a bad batch refused whole with line
numbers, a good one applied once per invoice (a re-run grants nothing again)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core.topup_batch import parse_batch
from orchestrator.service.context import open_fleet
from orchestrator.settings import load_settings
from tests.unit.billing_seed import JSONL_BATCH, add_ann


def test_json_lines_and_csv_parse_alike() -> None:
    jsonl = (
        '{"configuration": "a-1", "amount": "4.99", "invoice": "INV-1", "bytes": 1000}\n\n'
        '{"configuration": "a-1", "amount": "9", "invoice": "INV-2", "plan": "basic"}\n'
    )
    csv_text = "configuration,amount,invoice,bytes,plan\na-1,4.99,INV-1,1000,\na-1,9,INV-2,,basic\n"
    for text in (jsonl, csv_text):
        good, bad = parse_batch(text)
        assert bad == []
        assert [(g.invoice, g.bytes_granted, g.plan) for g in good] == [
            ("INV-1", 1000, None),
            ("INV-2", None, "basic"),
        ]


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("", ["line 1: no top-ups in the file"]),
        ('{"configuration": "a"\n', ["line 1: not JSON: Expecting ',' delimiter"]),
        ("[1]\n", ["line 1: not a JSON object"]),
        (
            '{"configuration": "a", "amount": "1", "invoice": "I"}\n',
            ["line 1: give exactly one of bytes or plan"],
        ),
        (
            '{"configuration": "a", "amount": 4.99, "invoice": "I", "bytes": 1}\n',
            ['line 1: amount: 4.99: a decimal string such as "4.99"'],
        ),
        (
            '{"configuration": "a", "amount": "1", "invoice": "I I", "bytes": 1}\n',
            ["line 1: invoice: 'I I': letters, digits and . _ / - only"],
        ),
        (
            '{"configuration": "a", "amount": "1", "invoice": "I", "bytes": -5}\n',
            ["line 1: bytes: -5: a whole number of bytes"],
        ),
        (
            '{"configuration": "a", "amount": "1", "invoice": "I", "bytes": 1, "card": "4111"}\n',
            ["line 1: card: '4111': unknown field"],
        ),
        (
            '{"configuration": "a", "amount": "1", "invoice": "I", "bytes": 1}\n'
            '{"configuration": "b", "amount": "1", "invoice": "I", "bytes": 2}\n',
            ["line 2: invoice: 'I': repeats line 1"],
        ),
        (
            "configuration,price\na,1\n",
            [
                "line 1: header: 'configuration,price': a CSV header names configuration, amount, "
                "invoice and bytes and/or plan, each once: unknown 'price'; missing amount, invoice; "
                "missing bytes or plan"
            ],
        ),
        (
            "configuration,amount,invoice,bytes\na,1,I,\n",
            ["line 2: give exactly one of bytes or plan"],
        ),
    ],
)
def test_bad_lines_are_named(text: str, problems: list[str]) -> None:
    _good, bad = parse_batch(text)
    assert len(bad) == len(problems)
    assert all(str(b).startswith(p) for b, p in zip(bad, problems, strict=True)), bad


@pytest.fixture
def store_with_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("WGFLEET_CONFIG", raising=False)
    monkeypatch.setenv("WGFLEET_DATA_DIR", str(tmp_path / "data"))
    with open_fleet(load_settings()) as fleet:
        add_ann(fleet)
    return tmp_path


def granted(name: str) -> int:
    with open_fleet(load_settings()) as fleet:
        return sum(t.bytes_granted for t in fleet.store.topups(name))


def test_a_batch_applies_once_per_invoice(
    store_with_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = store_with_config / "billing.jsonl"
    batch.write_text(JSONL_BATCH)
    assert main(["--json", "topup", "--from", str(batch)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert [(r["line"], r["created"]) for r in first] == [(1, True), (2, True)]
    assert granted("ann-1") == 6000
    assert main(["--json", "topup", "--from", str(batch)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [r["created"] for r in again] == [False, False]
    assert granted("ann-1") == 6000


def test_a_batch_with_one_bad_line_applies_nothing(
    store_with_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = store_with_config / "billing.csv"
    batch.write_text(
        "configuration,amount,invoice,bytes,plan\n"
        "ann-1,4.99,C-1,1000,\n"
        "nobody-1,4.99,C-2,1000,\n"
        "ann-1,4.99,C-3,,gold\n"
    )
    assert main(["topup", "--from", str(batch)]) == 2
    err = capsys.readouterr().err
    assert "2 bad line(s), nothing applied" in err
    assert f"{batch}:3: configuration: 'nobody-1': no such configuration" in err
    assert f"{batch}:4: plan: 'gold': no such plan" in err
    assert granted("ann-1") == 0
