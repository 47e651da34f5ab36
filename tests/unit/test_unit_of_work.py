"""One way through the code: every use case runs in a session (service.context.open_fleet).

Nothing but the unit of work opens the store or takes the fleet lock; the UIs never touch the
store; a use case that changes the fleet refuses a session without the lock; core's errors
reach every caller as WgfleetErrors with an exit code.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import threading
from pathlib import Path

import pytest

import orchestrator
from orchestrator.core.errors import Exhausted, InvalidInput, NodeAnswerInvalid
from orchestrator.errors import CapacityExhausted, ExitCode, FleetBusy, ProtocolViolation
from orchestrator.service import catalog, peers
from orchestrator.service.context import ReadOnlySession, open_fleet
from orchestrator.settings import Settings

PACKAGE = Path(orchestrator.__file__).parent
UNIT_OF_WORK = {"service/context.py", "service/lock.py"}


def sources(*parts: str) -> dict[str, str]:
    found = {}
    for part in parts:
        base = PACKAGE / part
        for path in [base] if base.is_file() else sorted(base.rglob("*.py")):
            found[str(path.relative_to(PACKAGE))] = path.read_text()
    return found


def test_only_the_unit_of_work_opens_the_store_or_takes_the_lock() -> None:
    opened = {
        name
        for name, text in sources("cli", "tui", "api.py", "server", "service").items()
        if re.search(r"\b(open_store|fleet_lock)\(", text)
    }
    assert opened == UNIT_OF_WORK


def test_the_uis_never_touch_the_store() -> None:
    touching = {
        f"{name}:{number}"
        for name, text in sources("cli", "tui", "api.py", "server").items()
        for number, line in enumerate(text.splitlines(), 1)
        if re.search(r"\.store\b", line) and not line.lstrip().startswith("#")
    }
    assert touching == set()


# Service functions that take the settings, not a session: what a session is made from (paths,
# the inventory, the playbook runner), lab machinery that has no store, checks run before a
# session opens, and the loops that open one session per round. Everything else takes a Fleet.
SETTINGS_HELPERS = {
    "audit": {"controller_keys"},
    "controller_keys": {"own_key_lines", "key_paths"},
    "shared_files": {"pull", "push"},  # what a session is made from, called by context only
    "deploy": {
        "inventory_path",
        "fleet_nodes_path",
        "inventory_sources",
        "node_host_vars",
        "write_fleet_nodes",
        "root_targets",
        "ansible_work_dir",
        "run_fleet_playbook",
        "records_path",
    },
    "host_keys": {"pin_store"},
    "keys": {"key_policy"},
    "privacy": {"retention", "check_contact", "journal_facts", "resolver_facts"},
    "demo": {"run_demo"},
    "sync_loop": {"sync_every"},
    "context": {"open_fleet", "upgrade_store", "with_stored_policies"},
    "lock": {"fleet_lock"},
    # What a session's secret store is made from: the fleet secret, checked against the store.
    "fleet_keyring": {"load_keyring", "import_local_secrets"},
}
NO_SESSION_MODULES = {"lab", "preflight"}  # the lab's machines; checks before any session


def test_every_use_case_takes_the_session() -> None:
    offenders = []
    for name, text in sources("service").items():
        module = Path(name).stem
        if module in NO_SESSION_MODULES:
            continue
        for node in ast.parse(text).body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            first = node.args.posonlyargs + node.args.args
            annotation = ast.unparse(first[0].annotation) if first and first[0].annotation else ""
            if annotation == "Settings" and node.name not in SETTINGS_HELPERS.get(module, ()):
                offenders.append(f"{module}.{node.name}")
    assert offenders == []


def test_a_writing_use_case_refuses_a_read_session(settings: Settings) -> None:
    with open_fleet(settings) as fleet, pytest.raises(ReadOnlySession, match="write=True"):
        peers.add_account(fleet, "ann", "a password", "dev-a")
    with open_fleet(settings) as fleet:
        assert [a.account.username for a in catalog.accounts(fleet)] == []
    with open_fleet(settings, write=True, operation="accounts add") as fleet:
        peers.add_account(fleet, "ann", "a password", "dev-a")
        assert fleet.operation == "accounts add"
    with open_fleet(settings) as fleet:
        assert [a.account.username for a in catalog.accounts(fleet)] == ["ann"]


def test_a_session_inside_a_session_passes_but_another_thread_waits_its_turn(
    settings: Settings,
) -> None:
    refused: list[BaseException] = []

    def other_thread() -> None:
        try:
            with open_fleet(settings, write=True, wait=False):
                pass
        except FleetBusy as exc:
            refused.append(exc)

    with open_fleet(settings, write=True):
        with open_fleet(settings, write=True, wait=False) as inner:  # the same thread
            assert inner.writes
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(timeout=30)
    assert len(refused) == 1 and refused[0].exit_code == ExitCode.BUSY
    with open_fleet(settings, write=True, wait=False):  # released when the block ended
        pass


@pytest.mark.parametrize(
    ("raised", "seen", "code"),
    [
        (InvalidInput("a size such as 10GiB"), "UsageError", ExitCode.USAGE),
        (NodeAnswerInvalid("negative counter"), ProtocolViolation.__name__, ExitCode.FAILED),
        (Exhausted("no address left in 198.19.1.0/24"), CapacityExhausted.__name__, 1),
    ],
)
def test_core_errors_leave_a_session_as_wgfleet_errors(
    settings: Settings, raised: Exception, seen: str, code: int
) -> None:
    with pytest.raises(Exception) as caught, open_fleet(settings):
        raise raised
    assert type(caught.value).__name__ == seen
    assert caught.value.exit_code == code  # type: ignore[attr-defined]
    assert str(caught.value) == str(raised)


def test_writers_are_marked() -> None:
    """The use cases that change the fleet carry the guard (a new one must too)."""
    from orchestrator.service import audit, billing, deploy, fleet_file, keys, push, sync

    for function in (
        peers.add_configuration,
        peers.remove_configurations,
        billing.topup_batch,
        keys.rotate_peer,
        push.push,
        sync.sync,
        deploy.deploy,
        audit.audit,
        fleet_file.apply,
        catalog.set_plan,
    ):
        assert inspect.unwrap(function) is not function, function.__qualname__


def test_each_writing_session_leaves_one_row_in_the_trail_and_readers_none(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli import main
    from orchestrator.errors import UsageError

    assert main(["plans", "set", "p", "--quota", "1GiB"]) == 0
    assert main(["plans", "list"]) == 0  # a reader: no row
    with pytest.raises(UsageError), open_fleet(settings, write=True, operation="peers remove"):
        raise UsageError("no configuration x")
    capsys.readouterr()
    assert main(["--json", "trail"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["operation"], r["outcome"], r["steps"]) for r in rows] == [
        ("peers remove", "UsageError (exit 2)", 0),
        ("plans set", "ok", 1),
    ]
    assert all(r["finished_at"] >= r["started_at"] > 0 and r["controller"] for r in rows)
    # Only what ran, where and when: no argument, no name of a plan, account or configuration.
    assert '"p"' not in json.dumps(rows)


def test_a_shard_session_nests_a_shard_session_but_never_claims_the_whole_fleet(
    settings: Settings,
) -> None:
    from orchestrator.core.shard import parse_shard

    shard = parse_shard("1/2")
    with open_fleet(settings, write=True, wait=False, shard=shard):
        with open_fleet(settings, write=True, wait=False, shard=shard) as inner:
            assert inner.writes
        with (
            pytest.raises(RuntimeError, match="whole-fleet session inside a shard"),
            open_fleet(settings, write=True, wait=False),
        ):
            pass
