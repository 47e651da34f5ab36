"""Error lines quote outside values safely: no control or bidi character reaches the
terminal, and a huge value is cut with its length named."""

from __future__ import annotations

import pytest

from orchestrator.core.quoting import QUOTE_LIMIT, quote, sanitize
from orchestrator.errors import ConfigError, RemoteCommandFailed


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("a\nb\rc\td", "'a\\nb\\rc\\td'"),
        ("\x1b[31mred", "'\\x1b[31mred'"),
        ("evil\u202etxt.exe", "'evil\\u202etxt.exe'"),
        ("\u2066isolate\u2069", "'\\u2066isolate\\u2069'"),
        ("\u200bzero\u200dwidth\ufeff", "'\\u200bzero\\u200dwidth\\ufeff'"),
        ("line\u2028sep\u2029", "'line\\u2028sep\\u2029'"),
        ("\x85next\x9bcsi", "'\\x85next\\x9bcsi'"),
        ("tag\U000e0041", "'tag\\U000e0041'"),
        ("back\\slash", "'back\\\\slash'"),
        ("Zürich", "'Zürich'"),
        (7, "7"),
        (None, "None"),
        ([1, "a\u202e"], "[1, 'a\\u202e']"),
    ],
)
def test_values_are_quoted_with_unsafe_characters_escaped(value: object, shown: str) -> None:
    assert quote(value) == shown


def test_long_values_are_cut_and_their_length_named() -> None:
    shown = quote("x" * 50_000_000)
    assert shown == "'" + "x" * QUOTE_LIMIT + "'... (50000000 characters)"
    assert quote(list(range(10**6))).endswith("... (1000000 items)]")
    # A number past Python's 4,300-digit printing limit is described, not printed.
    assert quote(10**5000) == "<a number of 16610 bits>"
    assert len(quote({"k": "v" * 10**6})) < 400


def test_free_text_keeps_its_escapes_and_becomes_one_line() -> None:
    assert sanitize("a\\u202e b\u202e\nnext") == "a\\u202e b\\u202e\\nnext"
    assert sanitize("y" * 10, limit=4) == "yyyy... (10 characters)"


def test_config_errors_quote_the_value_and_name_the_line() -> None:
    error = ConfigError("fleet.yml", "nodes.x", "a\u202eb\n" + "z" * 1000, "bad", line=3)
    text = str(error)
    assert text.startswith("fleet.yml:3: nodes.x: 'a\\u202eb\\n")
    assert "\n" not in text and "\u202e" not in text and len(text) < 300
    assert text.endswith("... (1004 characters): bad")


def test_a_nodes_stderr_line_is_escaped_in_the_error() -> None:
    error = RemoteCommandFailed("n1", "wgfleet-peers", 1, "ok\nerror \x1b[2Jforged\u202e")
    assert str(error) == "n1: `wgfleet-peers` exited 1: error \\x1b[2Jforged\\u202e"


def test_a_nodes_refusal_reaches_the_operator_as_one_escaped_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from orchestrator.cli.output import fail_lines
    from orchestrator.core.push_protocol import PushProtocolError, parse_answer

    with pytest.raises(PushProtocolError) as raised:
        parse_answer("error refused\x1b]0;owned\x07\u202e\nerror second\n")
    assert str(raised.value) == "refused\\x1b]0;owned\\x07\\u202e"
    fail_lines("push failed on", [("n1", "a\nwgfleet: forged line\x1b[2J")])
    assert (
        capsys.readouterr().err == "wgfleet: push failed on n1: a\\nwgfleet: forged line\\x1b[2J\n"
    )


@pytest.mark.parametrize(
    ("parse", "text", "shown"),
    [
        ("duration", "7\u202ed", "'7\\u202ed' is not a duration"),
        ("shard", "1/\x1b4", "shard '1/\\x1b4': expected I/N"),
        ("wgquick", "[Interface]\nPrivate\u2066Key = x\n", "unknown key 'Private\\u2066Key'"),
        ("public key", "rsa\x00 " + "A" * 100, "not an OpenSSH public key: 'rsa\\x00 AAAA"),
    ],
)
def test_parsers_quote_what_they_refuse(parse: str, text: str, shown: str) -> None:
    from orchestrator.core.inventory import parse_public_key
    from orchestrator.core.keys import parse_duration
    from orchestrator.core.shard import parse_shard
    from orchestrator.core.wgquick import parse_wg_quick

    parsers = {
        "duration": parse_duration,
        "shard": parse_shard,
        "wgquick": parse_wg_quick,
        "public key": parse_public_key,
    }
    with pytest.raises(ValueError) as raised:
        parsers[parse](text)
    assert shown in str(raised.value)
