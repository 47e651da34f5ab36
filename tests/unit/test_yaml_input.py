"""Strict, bounded YAML for settings, fleet files and inventories: every hostile document is
one YamlInputError naming its line, quickly, before anything large is built."""

from __future__ import annotations

from datetime import date

import pytest

from orchestrator.core import yaml_input
from orchestrator.core.text_input import TextInputError, decode_text
from orchestrator.core.yaml_input import YamlInputError

BOMB = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(8)
)  # 10^9 values once expanded, in 300 bytes


@pytest.mark.parametrize(
    ("text", "aliases", "line", "problem"),
    [
        ("a: 1\nb: 2\na: 3\n", False, 3, "given twice (also on line 1)"),
        ("a:\n  b: 1\n  b: 2\n", True, 3, "given twice (also on line 2)"),
        ("a: &x 1\nb: *x\n", False, 2, "aliases are not allowed in this file"),
        (BOMB, False, 2, "aliases are not allowed in this file"),
        (BOMB, True, 7, "its aliases expand to more than 2000000 values"),
        ("a: &a [*a]\n", True, 1, "a recursive alias"),
        (
            "".join(f"a{i}: &a{i} [{'*a' + str(i - 1) if i else 1}]\n" for i in range(100)),
            True,
            64,
            "its aliases nest deeper than 64 levels",
        ),
        ("a:\n\tb: 1\n", False, 2, "a tab in the indentation"),
        ("[" * 500 + "]" * 500, False, 1, "nested deeper than 64 levels"),
        ("[" * 100_000 + "]" * 100_000, False, 1, "nest"),
        ("".join(" " * i + f"k{i}:\n" for i in range(100)), False, 65, "nested deeper"),
        ("when: 2026-13-45\n", False, 1, "cannot read it: month must be in 1..12"),
        ("n: 1" + "0" * 5000 + "\n", False, 1, "cannot read it: Exceeds the limit"),
        ("n: 0x" + "f" * 100 + "\n", False, 1, "a number too large"),
        ("a: [\n", False, 2, "not YAML"),
        ("a: 1\n---\nb: 2\n", False, 2, "not YAML"),
        ("? [1]\n: 2\n", False, 1, "not YAML: found unhashable key"),
    ],
    ids=lambda value: value[:24] if isinstance(value, str) else str(value),
)
def test_hostile_documents_are_refused_naming_the_line(
    text: str, aliases: bool, line: int, problem: str
) -> None:
    with pytest.raises(YamlInputError) as caught:
        yaml_input.load(text, aliases=aliases)
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_ordinary_documents_read_as_safe_load_does() -> None:
    text = "a: {b: 1, c: [1, 2]}\nd: 2026-01-02\ne: ~\n"
    expected = {"a": {"b": 1, "c": [1, 2]}, "d": date(2026, 1, 2), "e": None}
    assert yaml_input.load(text) == expected
    assert yaml_input.load("") is None
    # Where aliases are allowed, merges work and keys beside a merge override it.
    merged = yaml_input.load("base: &b {x: 1, y: 1}\nn: {<<: *b, x: 2}\n", aliases=True)
    assert merged["n"] == {"x": 2, "y": 1}


def test_field_lines_name_where_each_key_is_written() -> None:
    root = yaml_input.compose("a:\n  b: 1\n  c:\n    d: 2\ne: 3\n")
    assert yaml_input.field_lines(root) == {"a": 1, "a.b": 2, "a.c": 3, "a.c.d": 4, "e": 5}


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        (b"a: 1\nb: \xff\n", 2, "not UTF-8 text (at byte offset 8)"),
        (b"ok\n\x00", 2, "U+0000: control characters are not allowed"),
        (b"x\n\n\x1b[2J", 3, "U+001B"),
        ("a\ufeffb".encode(), 1, "U+FEFF"),
        ("\u0085".encode(), 1, "U+0085"),
    ],
)
def test_text_is_utf8_without_control_characters(data: bytes, line: int, problem: str) -> None:
    with pytest.raises(TextInputError) as caught:
        decode_text(data)
    assert caught.value.line == line
    assert problem in caught.value.problem


def test_a_leading_byte_order_mark_is_dropped() -> None:
    assert decode_text("\ufeffconfiguration,amount\n".encode()) == "configuration,amount\n"
    assert decode_text(b"tab\tand\r\nnewline\n") == "tab\tand\r\nnewline\n"
