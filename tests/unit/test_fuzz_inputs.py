"""Fuzzing every parser and file format of the controller (issue 20, point 8).

Any input gives a result or the parser's own documented ValueError subclass; the entry point a
caller uses (the service or loader) turns every failure into a WgfleetError with exit 2 and a
one-line message. Inputs are hostile on purpose: arbitrary text and bytes, and valid documents
mutated with fragments that broke parsers before (aliases, tabs, bidi and control characters,
non-ASCII digits, huge numbers, deep nesting, byte order marks).

Deterministic: derandomized, no example database, bounded examples, no deadline (a shared CI
machine); about 30 s in all.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli.output import positive_int
from orchestrator.core import yaml_input
from orchestrator.core.collector import CounterParseError, parse_counters
from orchestrator.core.converge import reported_public_keys, state_fingerprint
from orchestrator.core.fleetfile import FleetFile, FleetFileInvalid, parse_fleet_file
from orchestrator.core.input_limits import MAX_BYTES
from orchestrator.core.inventory import key_fingerprint, parse_known_hosts, parse_public_key
from orchestrator.core.keys import parse_duration
from orchestrator.core.push_protocol import PushAnswer, PushProtocolError, parse_answer
from orchestrator.core.quoting import quote, sanitize
from orchestrator.core.shard import parse_shard
from orchestrator.core.text_input import TextInputError, decode_text
from orchestrator.core.topup_batch import parse_batch
from orchestrator.core.units import parse_size
from orchestrator.core.wgquick import WgQuickError, parse_wg_quick
from orchestrator.errors import ExitCode, WgfleetError
from orchestrator.service import deploy as deploy_service
from orchestrator.service import fleet_file
from orchestrator.service.audit import parse_probe_output
from orchestrator.service.billing import BatchRejected, topup_batch
from orchestrator.service.context import Fleet, open_fleet
from orchestrator.service.lab import read_client_config
from orchestrator.service.node_keys import NodeKeyRefused, parse_node_key_answer
from orchestrator.settings import Settings, load_settings, settings_from_mapping
from tests.unit.billing_seed import JSONL_BATCH, add_ann

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FEW = settings(FUZZ, max_examples=60)
T = TypeVar("T")

KEY = base64.b64encode(b"k" * 32).decode()
OTHER_KEY = base64.b64encode(b"o" * 32).decode()

# What broke parsers before, or would: YAML structure, aliases and merges, tabs, quotes, bidi
# and control characters, non-ASCII digits, numbers past 64 bits or 4,300 digits, impossible
# dates, byte order marks, deep nesting, CSV and JSON syntax, protocol words.
FRAGMENTS = [
    "\n",
    "\r\n",
    "  ",
    "\t",
    "- ",
    ": ",
    "? ",
    "{",
    "}",
    "[",
    "]",
    ",",
    '"',
    "'",
    "#",
    "&a ",
    "*a",
    "<<: ",
    "!!binary ",
    "!!python/object:os.system ",
    "---\n",
    "...\n",
    "version: 1\n",
    "nodes:\n",
    "plans:\n",
    "accounts:\n",
    "configurations:\n",
    "quota: ",
    "public_key: ",
    KEY,
    "all",
    "node1",
    "198.19.1.0/24",
    "2026-13-45",
    "99999999999999999999",
    "9223372036854775808",
    "1" + "0" * 4400,
    "1e999",
    "-1",
    "0x" + "f" * 40,
    "\u0661\u0662",
    "\uff11",
    "\u00b2",
    "\u202e",
    "\u2066",
    "\u200b",
    "\ufeff",
    "\x00",
    "\x1b[2J",
    "\x85",
    "\u2028",
    "[" * 200,
    "{" * 70,
    "x" * 2000,
    "configuration,amount,invoice,bytes,plan\n",
    "a-1,4.99,I-1,1000,\n",
    '{"configuration": "a-1", "amount": "4.99", "invoice": "I-1", "bytes": 1}',
    "epoch abc\n",
    "ok\n",
    "interface wg0n\n",
    "summary kind=full interface=up unchanged=1\n",
    "[Interface]\n",
    "[Peer]\n",
    "PrivateKey = ",
    "AllowedIPs = ",
    "Address = ",
    "SaveConfig = true\n",
]


# Numbers as nodes might print them: ASCII digits mixed with other Unicode digits (which
# str.isdigit accepts and int() may or may not), signs, underscores, spaces, 22 digits.
DIGITS = st.text(
    alphabet=st.sampled_from("0123456789") | st.sampled_from("\u00b2\u0661\uff11\u09e7 +-_"),
    min_size=1,
    max_size=22,
)


def mutated(base: str) -> st.SearchStrategy[str]:
    """``base`` with fragments and random text inserted, ranges deleted, lines repeated."""

    @st.composite
    def build(draw: Callable[..., object]) -> str:
        text = base
        for _ in range(draw(st.integers(0, 6))):  # type: ignore[operator]
            action = draw(st.sampled_from(["insert", "text", "delete", "repeat"]))
            at = draw(st.integers(0, len(text)))  # type: ignore[arg-type]
            if action == "insert":
                text = text[:at] + draw(st.sampled_from(FRAGMENTS)) + text[at:]  # type: ignore[operator]
            elif action == "text":
                text = text[:at] + draw(st.text(max_size=8)) + text[at:]  # type: ignore[operator]
            elif action == "delete":
                text = text[:at] + text[at + draw(st.integers(1, 40)) :]  # type: ignore[operator]
            else:
                lines = text.splitlines(keepends=True)
                if lines:
                    index = draw(st.integers(0, len(lines) - 1))
                    lines.insert(index, lines[index])  # type: ignore[call-overload]
                text = "".join(lines)
        return text

    return build()


def hostile(base: str) -> st.SearchStrategy[str]:
    return st.one_of(
        mutated(base),
        st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=6), max_size=25).map("".join),
        st.text(max_size=300),
    )


def hostile_bytes(base: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        hostile(base).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.binary(max_size=300),
        mutated(base).map(lambda text: text.encode("utf-8", "replace") + b"\xff\xfe"),
    )


def one_line(message: str) -> None:
    assert "\n" not in message and "\r" not in message
    assert all(c.isprintable() for c in message), repr(message)
    assert len(message) < 6000


def read_or_refused_at_a_line(read: Callable[[], T], error: type[Exception]) -> T | None:
    """What ``read`` returns, or None when it raises ``error`` naming the line (1 or later)."""
    try:
        return read()
    except error as exc:
        assert getattr(exc, "line", 0) >= 1, exc
        return None


def refused_with_exit_2(call: Callable[[], object]) -> None:
    try:
        call()
    except WgfleetError as exc:
        assert exc.exit_code == ExitCode.USAGE, exc
        one_line(str(exc))


# --- fleet files ---------------------------------------------------------------------------------

FLEET = f"""\
version: 1
nodes:
  node1: {{address: 198.18.0.10, tunnel_network: 198.19.1.0/24, port: 51820}}
plans:
  basic: {{quota: 10GiB, reset: monthly, anchor_day: 5, price: "4.99"}}
policies:
  keys: {{grace: 2d}}
  sync_interval: 60s
accounts:
  ops: {{device_id: laptop}}
configurations:
  - {{name: site, account: ops, nodes: [node1], public_key: "{KEY}", plan: basic}}
"""


@FUZZ
@given(hostile(FLEET))
def test_fleet_file_parser(text: str) -> None:
    try:
        parsed = parse_fleet_file(text, "fleet.yml")
    except FleetFileInvalid as exc:
        assert exc.errors
        for error in exc.errors:
            one_line(str(error))
        return
    assert isinstance(parsed, FleetFile)
    for plan in parsed.plans:
        assert 0 <= plan.quota_bytes <= MAX_BYTES


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def hostile_files_refused(
    name: str, base: str, read: Callable[[Path], object]
) -> Callable[..., None]:
    """A test: ``read`` takes a file ``name`` holding hostile bytes (``base`` mutated, or any
    bytes) and either reads it or refuses it with exit 2 in one line."""

    @FEW
    @given(hostile_bytes(base))
    def test(workdir: Path, data: bytes) -> None:
        path = workdir / name
        path.write_bytes(data)
        refused_with_exit_2(lambda: read(path))

    return test


test_fleet_file_reader = hostile_files_refused("fleet.yml", FLEET, fleet_file.read_fleet_file)
test_saved_plans = hostile_files_refused(
    "plan.json",
    '{"format": "wgfleet-plan/1", "file": "f.yml", "fingerprint": "ab"}',
    fleet_file.load_saved_plan,
)


# --- settings, YAML, text ------------------------------------------------------------------------

SETTINGS = """\
data_dir: /var/lib/wgfleet
usage: {retention_days: 400, warn_percent: 80, sync_interval: 5m}
keys: {grace: 7d, node_max_age_days: 180}
lab: {name: lab, subnet: 198.18.0.0/20}
notify: {command: /usr/local/bin/tell, timeout: 10}
deploy: {full_every_days: 7}
"""


test_settings_files = hostile_files_refused("settings.yml", SETTINGS, load_settings)


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(FRAGMENTS),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["usage", "keys", "lab", "ssh", "privacy", "notify", "deploy", "x"])
            | st.sampled_from(["name", "subnet", "grace", "warn_percent", "command", "webhook"])
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@FUZZ
@given(JSONISH)
def test_settings_from_any_structure(raw: object) -> None:
    refused_with_exit_2(lambda: settings_from_mapping(raw, "settings.yml", Path("/")))


@FUZZ
@given(hostile(SETTINGS), st.booleans())
def test_yaml_reader(text: str, aliases: bool) -> None:
    try:
        yaml_input.load(text, aliases=aliases)
    except yaml_input.YamlInputError as exc:
        assert exc.line >= 1
        one_line(quote(exc.value) + exc.problem)


@FUZZ
@given(hostile_bytes("a: 1\n"))
def test_text_decoder(data: bytes) -> None:
    text = read_or_refused_at_a_line(lambda: decode_text(data), TextInputError)
    assert text is None or ("\x00" not in text and "\ufeff" not in text)


@FUZZ
@given(st.one_of(st.text(), JSONISH, st.binary()), st.integers(1, 300))
def test_quoting_is_one_safe_bounded_line(value: object, limit: int) -> None:
    for shown in (quote(value, limit), sanitize(str(value)[:10_000], limit)):
        one_line(shown)
        assert len(shown) <= 4 * limit + 300  # escapes are at most 10 characters a character


# --- inventories -----------------------------------------------------------------------------------

INVENTORY = f"""\
all:
  children:
    wgfleet_nodes:
      hosts:
        node1: &n {{ansible_host: 198.18.0.10, wgfleet_tunnel_network: 198.19.1.0/24}}
        node2: {{<<: *n, ansible_host: fra2.example.org, wireguard_port: 51900}}
      vars:
        wireguard_peers: [{{public_key: "{KEY}", allowed_ips: 10.1.0.0/24, preshared_key_file: /etc/p}}]
"""


def inventory_host_vars(path: Path) -> object:
    settings = settings_from_mapping({"inventory": str(path)}, "s.yml", path.parent)
    return deploy_service.node_host_vars(settings)


test_inventories = hostile_files_refused("hosts.yml", INVENTORY, inventory_host_vars)


KNOWN_HOSTS = f"node1,198.18.0.10 ssh-ed25519 {base64.b64encode(b'h' * 51).decode()}\n"


@FUZZ
@given(hostile(KNOWN_HOSTS))
def test_known_hosts(text: str) -> None:
    for key in parse_known_hosts(text):
        with contextlib.suppress(ValueError):
            key_fingerprint(key.key_base64)
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            parse_public_key(line)


# --- top-up batches --------------------------------------------------------------------------------

CSV_BATCH = "configuration,amount,invoice,bytes,plan\nann-1,4.99,C-1,1000,\nann-1,9,C-2,,basic\n"


@FUZZ
@given(st.one_of(hostile(CSV_BATCH), hostile(JSONL_BATCH)))
def test_topup_batch_parser(text: str) -> None:
    good, bad = parse_batch(text)
    for line in good:
        assert line.bytes_granted is None or 0 <= line.bytes_granted <= MAX_BYTES
        assert line.invoice.isascii() and line.amount.isascii()
    for problem in bad:
        one_line(str(problem))


@pytest.fixture(scope="module")
def billing_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("billing")
    built: Settings = settings_from_mapping({"data_dir": str(base / "data")}, "s.yml", base)
    with open_fleet(built, write=True) as fleet:
        add_ann(fleet)
        yield fleet


@FEW
@given(st.one_of(hostile(CSV_BATCH), hostile(JSONL_BATCH)))
def test_topup_batches_through_the_service(billing_fleet: Fleet, text: str) -> None:
    try:
        topup_batch(billing_fleet, text, "billing.csv")
    except BatchRejected as exc:
        assert exc.exit_code == ExitCode.USAGE
        one_line(str(exc))
    totals = billing_fleet.store.running_totals()
    assert all(0 <= total <= MAX_BYTES for total in totals.granted.values())


# --- sizes, durations, shards, CLI numbers ---------------------------------------------------------


@FUZZ
@given(st.one_of(hostile("10GiB"), st.integers(), st.booleans(), st.floats(), st.none()))
def test_sizes(value: object) -> None:
    try:
        size = parse_size(value)
    except ValueError:
        return
    assert 0 <= size <= MAX_BYTES


@FUZZ
@given(hostile("7d"))
def test_durations_and_shards(text: str) -> None:
    for parse in (parse_duration, parse_shard):
        with contextlib.suppress(ValueError):
            parse(text)


@FUZZ
@given(hostile("42"))
def test_cli_whole_numbers(text: str) -> None:
    try:
        value = positive_int(text)
    except argparse.ArgumentTypeError as exc:
        one_line(str(exc))
        return
    assert 0 <= value <= MAX_BYTES and text.isascii()


# --- wg-quick files ---------------------------------------------------------------------------------

WG_QUICK = f"""\
[Interface]
PrivateKey = {KEY}
Address = 198.19.1.2/32
DNS = 198.19.1.1

[Peer]
PublicKey = {OTHER_KEY}
PresharedKey = {KEY}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = 198.18.0.10:51820
"""


@FUZZ
@given(hostile(WG_QUICK))
def test_wg_quick_parser(text: str) -> None:
    config = read_or_refused_at_a_line(lambda: parse_wg_quick(text), WgQuickError)
    if config is not None:
        config.stripped()


test_wg_quick_files = hostile_files_refused("client.conf", WG_QUICK, read_client_config)


# --- what nodes answer ------------------------------------------------------------------------------

REMOVED_LINES = st.lists(
    st.tuples(DIGITS, DIGITS).map(lambda counts: f"removed {KEY} {counts[0]} {counts[1]}\n"),
    max_size=2,
)
SUMMARIES = st.tuples(
    st.sampled_from(["unchanged", "static", "elapsed_ms", "interface", "kind"]), DIGITS
).map(lambda parts: f"summary {parts[0]}={parts[1]}\n")
STRUCTURED_PUSH = st.tuples(REMOVED_LINES, SUMMARIES).map(
    lambda parts: "epoch e1\n" + "".join(parts[0]) + parts[1] + "ok\n"
)

PUSH_ANSWER = (
    f"epoch e1\nadded {KEY}\nremoved {OTHER_KEY} 10 20\ninterface wg0n\nepoch e2\n"
    f"removed {KEY} 1 2\nsummary kind=full interface=up unchanged=3 static=0 elapsed_ms=4\nok\n"
)


@FUZZ
@given(st.one_of(STRUCTURED_PUSH, hostile(PUSH_ANSWER), hostile("resync base 3\nok\n")))
def test_push_answers(text: str) -> None:
    try:
        answer = parse_answer(text)
    except PushProtocolError as exc:
        str(exc)
        return
    assert isinstance(answer, PushAnswer)
    assert all(r.rx_bytes >= 0 and r.tx_bytes >= 0 for r in answer.removed)


COUNTERS = f"epoch e1\n{KEY}\t10\t20\n{OTHER_KEY}\t0\t5\ninterface wg0n\nepoch e2\n{KEY}\t1\t2\n"


COUNTER_LINES = st.lists(
    st.tuples(st.sampled_from([KEY, OTHER_KEY, "short", ""]), DIGITS, DIGITS).map(
        lambda peer: "\t".join(peer) + "\n"
    ),
    max_size=4,
)
STRUCTURED_COUNTERS = st.tuples(
    st.sampled_from(["epoch e1\n", "epoch \n", "epoch e1\u202e\n", ""]),
    COUNTER_LINES,
    st.sampled_from(["", "interface wg0n\nepoch e2\n", "interface -x\n"]),
    COUNTER_LINES,
).map(lambda parts: parts[0] + "".join(parts[1]) + parts[2] + "".join(parts[3]))


@FUZZ
@given(st.one_of(STRUCTURED_COUNTERS, hostile(COUNTERS)))
def test_counter_answers(text: str) -> None:
    with contextlib.suppress(CounterParseError):
        parse_counters(text)


NODE_KEY_ANSWER = f"public {KEY}\nport 51821\n" + COUNTERS.split("interface")[0]


@FUZZ
@given(
    st.one_of(
        hostile(NODE_KEY_ANSWER),
        DIGITS.map(lambda port: f"public {KEY}\nport {port}\n"),
    )
)
def test_node_key_answers(text: str) -> None:
    try:
        answer = parse_node_key_answer("node1", text)
        assert answer.port is None or 0 < answer.port < 65536
    except NodeKeyRefused as exc:
        one_line(str(exc))


PROBE = "@@wgfleet-probe journald\nStorage=volatile\n@@wgfleet-probe-status 0\n"
STATE = "etc\t/etc/x 0644 root\nwireguard\tpublic-key wg0 " + KEY + "\n"


@FUZZ
@given(
    st.one_of(
        hostile(PROBE),
        DIGITS.map(lambda status: f"@@wgfleet-probe x\nout\n@@wgfleet-probe-status {status}\n"),
    ),
    hostile(STATE),
)
def test_audit_probes_and_deploy_state(probe: str, state: str) -> None:
    parse_probe_output(probe)
    reported_public_keys(state)
    # Its callers take a ValueError as "state unknown": a full run.
    with contextlib.suppress(ValueError):
        state_fingerprint(state)


def test_the_fuzz_strategies_reach_the_parsers_deeply() -> None:
    """The mutations keep enough structure to get past the first line: a valid base parses,
    and a mutated document can still be valid (not everything is refused on line 1)."""
    assert parse_fleet_file(FLEET, "f.yml").configurations
    assert parse_batch(CSV_BATCH)[1] == [] and parse_batch(JSONL_BATCH)[1] == []
    assert parse_answer(PUSH_ANSWER).overlap is not None
    assert parse_wg_quick(WG_QUICK).peers
    assert json.loads(json.dumps(FRAGMENTS))


def test_what_the_fuzzing_found_stays_fixed() -> None:
    """Regressions the fuzzing found: digits str.isdigit accepts and int() refuses, a port out
    of range, a probe line without a name or a status."""
    for answer in (
        f"epoch e1\nremoved {KEY} 0 \u00b2\nsummary kind=full\nok\n",
        f"epoch e1\nremoved {KEY} 0 {2**63}\nsummary kind=full\nok\n",
        "epoch e1\nsummary unchanged=_\nok\n",
        "epoch e1\nsummary elapsed_ms=\u0661\nok\n",
    ):
        with pytest.raises(PushProtocolError):
            parse_answer(answer)
    for port in ("\u00b25", "99999", "0", "080"):
        with pytest.raises(NodeKeyRefused, match="answered port"):
            parse_node_key_answer("node1", f"public {KEY}\nport {port}\n")
    assert parse_node_key_answer("node1", f"public {KEY}\nport 51821\n").port == 51821
    probes = parse_probe_output("@@wgfleet-probe \n@@wgfleet-probe x\n@@wgfleet-probe-status ?\n")
    assert probes["x"].status == -1
