"""Many configurations at once: the batch file's rows, all made in one transaction or none,
one push per node, each client config written once into --out-dir (a real SQLite store; the
nodes of tests/unit/conftest.py answer nobody, so the push fails and the nodes stay pending:
that it reaches the nodes is tests/integration/test_peer_batch.py's)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from orchestrator.core.models import Account
from orchestrator.core.peer_batch import BadRow, parse_peer_batch
from orchestrator.errors import ExitCode
from orchestrator.service.context import open_fleet
from orchestrator.service.peer_batch import BatchRefused, add_configurations
from orchestrator.settings import Settings
from tests.unit.refusals import refusal

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
YAML_BATCH = """\
configurations:
  - {account: ann, nodes: all, quota: 10GiB}
  - {account: ann, name: ann-tablet, nodes: [node1]}
  - account: bob
    nodes: node2
    plan: basic
"""
CSV_BATCH = "account,name,nodes,quota\nann,,node1 node2,1GiB\nbob,bob-laptop,node1,\n"


@pytest.fixture
def accounts(settings: Settings) -> Settings:
    with open_fleet(settings, write=True) as fleet:
        fleet.store.add_account(Account("ann", "scrypt$a", "dev-a"))
        fleet.store.add_account(Account("bob", "scrypt$b", "dev-b"))
    assert main(["plans", "set", "basic", "--quota", "5GiB"]) == 0
    return settings


def test_rows_from_yaml_and_csv() -> None:
    rows = parse_peer_batch(YAML_BATCH)
    assert [(r.row, r.line, r.account, r.name, r.nodes) for r in rows] == [
        (1, 2, "ann", None, None),
        (2, 3, "ann", "ann-tablet", ("node1",)),
        (3, 4, "bob", None, ("node2",)),
    ]
    assert rows[0].quota_bytes == 10 * 2**30 and rows[2].plan == "basic"
    csv_rows = parse_peer_batch(CSV_BATCH)
    assert [(r.row, r.line, r.nodes, r.quota_bytes) for r in csv_rows] == [
        (1, 2, ("node1", "node2"), 2**30),
        (2, 3, ("node1",), None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {account: ann}\n", "row 1 (line 1): nodes: None: missing: `all` or node names"),
        ("- {account: Ann!, nodes: all}\n", "row 1 (line 1): account: 'Ann!': an account name"),
        (
            "- {account: ann, nodes: all}\n- {account: ann, nodes: all, quota: 5 parsecs}\n",
            "row 2 (line 2): quota: '5 parsecs': a size",
        ),
        (
            "- {account: ann, nodes: all, quota: 1GiB, plan: basic}\n",
            "row 1 (line 1): plan: 'basic': give quota or plan, not both",
        ),
        ("- {account: ann, nodes: all, colour: red}\n", "row 1 (line 1): colour: '': unknown"),
        (
            "- {account: ann, name: a-1, nodes: all}\n- {account: ann, name: a-1, nodes: all}\n",
            "row 2 (line 2): name: 'a-1': repeats row 1",
        ),
        ("account,nodes,price\nann,all,3\n", "line 1: header: 'account,nodes,price'"),
        ("account,nodes\nann,all,extra\n", "row 1 (line 2): 3 values, the header names 2"),
        ("- {account: ann, nodes: 'x y'}\n\t- bad\n", "line 2: not YAML or CSV"),
        ("", "line 1: no configurations in the file"),
    ],
)
def test_a_bad_row_is_named_by_row_field_and_value(text: str, message: str) -> None:
    message_seen = refusal(BadRow, parse_peer_batch, text)
    assert message_seen.startswith(message), message_seen


def _store_state(settings: Settings) -> tuple[object, ...]:
    with open_fleet(settings) as fleet:
        return (
            sorted(c.name for c in fleet.store.configurations()),
            fleet.store.node_revisions(),
            sorted(os.listdir(settings.data_dir / "secrets"))
            if (settings.data_dir / "secrets").exists()
            else [],
        )


def test_one_transaction_and_one_push_per_node(accounts: Settings) -> None:
    before = _store_state(accounts)
    with open_fleet(accounts, write=True) as fleet:
        made = add_configurations(fleet, YAML_BATCH, "batch.yml")
        trail = list(fleet.trail)
    names = [c.configuration.name for c in made.created]
    assert names == ["ann-1", "ann-tablet", "bob-1"]
    assert {n: sorted(c.client_configs) for n, c in zip(names, made.created, strict=True)} == {
        "ann-1": ["node1", "node2"],
        "ann-tablet": ["node1"],
        "bob-1": ["node2"],
    }
    # One push for the lot: each node once (unreachable here, so it stays pending).
    assert sorted(n.node for n in made.push.nodes) == ["node1", "node2"]
    assert sum(1 for line in trail if line.startswith("node1: pushed")) == 1
    assert "3 configuration(s) added from batch.yml" in trail
    # The nodes moved one revision each: one transaction.
    revisions = _store_state(accounts)[1]
    assert isinstance(before[1], dict) and isinstance(revisions, dict)
    assert {n: r[0] - before[1][n][0] for n, r in revisions.items()} == {"node1": 1, "node2": 1}
    with open_fleet(accounts) as fleet:
        bob = fleet.store.configuration("bob-1")
        ann = fleet.store.configuration("ann-1")
    assert bob.plan == "basic"
    assert ann.quota_bytes == 10 * 2**30
    assert ann.addresses["node1"] != fleet_address(accounts, "ann-tablet", "node1")


def fleet_address(settings: Settings, name: str, node: str) -> object:
    with open_fleet(settings) as fleet:
        return fleet.store.configuration(name).addresses[node]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (
            "- {account: ann, nodes: all}\n- {account: carol, nodes: all}\n",
            "batch.yml: row 2 (line 2): account: 'carol': no such account; nothing made",
        ),
        (
            "- {account: ann, nodes: all}\n- {account: bob, nodes: [node1, node9]}\n",
            "batch.yml: row 2 (line 2): nodes: 'node9': no such node; nothing made",
        ),
        (
            "- {account: ann, nodes: all, plan: gold}\n",
            "batch.yml: row 1 (line 1): plan: 'gold': no such plan; nothing made",
        ),
        (
            "- {account: ann, nodes: all}\n- {account: bob, name: ann-1, nodes: all}\n",
            "batch.yml: row 2 (line 2): name: 'ann-1': given to row 1 too; nothing made",
        ),
    ],
)
def test_a_bad_batch_leaves_the_store_unchanged(
    accounts: Settings, batch: str, message: str
) -> None:
    before = _store_state(accounts)
    with open_fleet(accounts, write=True) as fleet, pytest.raises(BatchRefused) as refused:
        add_configurations(fleet, batch, "batch.yml")
    assert str(refused.value) == message
    assert refused.value.exit_code == ExitCode.USAGE
    assert _store_state(accounts) == before


def test_a_full_pool_refuses_the_whole_batch(accounts: Settings) -> None:
    rows = "".join(f"- {{account: ann, nodes: [node1], name: c-{i}}}\n" for i in range(254))
    before = _store_state(accounts)
    with open_fleet(accounts, write=True) as fleet, pytest.raises(BatchRefused) as refused:
        add_configurations(fleet, rows, "big.yml")
    assert "row 254 (line 254): nodes: 'node1': tunnel pool 198.19.1.0/24 is full" in str(
        refused.value
    )
    assert _store_state(accounts) == before  # the 253 preshared keys put before went too


def test_cli_writes_each_client_config_once_into_a_new_private_directory(
    accounts: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text(CSV_BATCH)
    out = tmp_path / "configs"
    capsys.readouterr()
    code = main(["--json", "peers", "add", "--from", str(batch), "--out-dir", str(out)])
    assert code == ExitCode.FAILED  # the nodes are unreachable here: pending, said on stderr
    shown = json.loads(capsys.readouterr().out)
    assert sorted(os.listdir(out)) == ["ann-1.node1.conf", "ann-1.node2.conf", "bob-laptop.conf"]
    assert shown["written"] == [str(out / n) for n in sorted(os.listdir(out))]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    for name in os.listdir(out):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o600
        assert "PrivateKey = " in (out / name).read_text()
    assert "PrivateKey" not in json.dumps(shown)  # the secrets are in the files only


def test_cli_refuses_before_anything_is_made(
    accounts: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.csv"
    batch.write_text(CSV_BATCH)
    before = _store_state(accounts)
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.conf").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    for argv, said in [
        (["--out-dir", str(used)], "not empty (1 entries, e.g. 'old.conf')"),
        (["--out-dir", str(link)], "is a symbolic link"),
        ([], "--from needs --out-dir DIR"),
        (["--out-dir", str(tmp_path / "n"), "--plan", "basic"], "drop --plan"),
    ]:
        capsys.readouterr()
        assert main(["peers", "add", "--from", str(batch), *argv]) == ExitCode.USAGE
        error = capsys.readouterr().err
        assert said in error and error.count("\n") == 1, error
    assert _store_state(accounts) == before
    assert list((tmp_path / "elsewhere").iterdir()) == []


FRAGMENTS = st.sampled_from(
    ["- ", "account: ann", "nodes: all", "{", "}", "[", "]", ",", "\t", "&a", "*a", "\n",
     "quota: ١٢", "name: x", "\u202e", "\ufeff", "account,nodes", "ann,all", ": ", "9" * 40]
)  # fmt: skip


@FUZZ
@given(st.one_of(st.text(max_size=300), st.lists(FRAGMENTS, max_size=30).map("".join)))
def test_any_text_gives_rows_or_one_bad_row(text: str) -> None:
    """Hostile text: rows, or the parser's BadRow (one line), never another exception."""
    try:
        rows = parse_peer_batch(text)
    except BadRow as exc:
        assert "\n" not in str(exc)
        return
    assert rows and all(r.account for r in rows)
