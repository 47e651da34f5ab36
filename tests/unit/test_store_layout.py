"""The store stays split by concern: every module of orchestrator/adapters/store is small and
says what it owns, and ``SqlStore`` keeps every public name it had as one class (issue 22), each
defined once, in the concern's module named below."""

from __future__ import annotations

import ast
from pathlib import Path

import orchestrator.adapters.store
from orchestrator.adapters.store import RowUsage, SqlStore, SyncLedger, open_store

# A module past this has grown a second concern: split it rather than raise the limit.
MAX_LINES = 400

# Every public name of SqlStore before the split (one class of ~1,740 lines), by the module
# that defines it now. A new public method is added here under its concern.
STORE_NAMES = {
    "base": ["close", "scrub", "transaction"],
    "migrations": ["columns", "require_current", "schema_version", "upgrade"],
    "nodes": [
        "begin_node_rotation",
        "bump_nodes",
        "cancel_node_rotation",
        "controller_keys",
        "finish_node_rotation",
        "mark_audited",
        "mark_pushed",
        "mark_sync_failed",
        "node",
        "node_audits",
        "node_health",
        "node_revisions",
        "nodes",
        "record_controller_key",
        "set_endpoint_hosts",
        "set_listen_port",
        "set_node_key",
        "upsert_node",
    ],
    "networks": ["count_networks6", "ipv6_prefix", "node_networks6", "set_ipv6_prefix"],
    "leases": ["LEASE_SECONDS", "lease_nodes"],
    "policies": ["policies", "replace_policies"],
    "operations": ["operations", "record_operation"],
    "tokens": ["add_token", "revoke_token", "token_by_id", "tokens"],
    "sealed": [
        "claim_fleet_key_id",
        "delete_sealed",
        "fleet_key_id",
        "put_sealed",
        "reseal",
        "sealed",
        "sealed_many",
        "sealed_secrets",
    ],
    "controllers": [
        "add_controller",
        "controllers",
        "replace_controller_key",
        "revoke_controller",
        "save_shared_file",
        "shared_files",
    ],
    "accounts": [
        "account",
        "account_records",
        "accounts",
        "add_account",
        "delete_account",
        "erase_contacts",
        "update_account",
    ],
    "configurations": [
        "add_configuration",
        "configuration",
        "configuration_counts",
        "configuration_names",
        "configuration_plans",
        "configurations",
        "placement_counts",
        "placements_of",
        "remove_configurations",
        "set_enabled",
        "hold_configurations",
        "set_valid_until",
        "taken_addresses",
        "update_configuration",
    ],
    "peer_keys": [
        "begin_peer_rotation",
        "end_grace",
        "retire_ended_keys",
        "rotations_ending",
        "set_psk",
    ],
    "removals": ["confirm_removals", "pending_removals"],
    "counters": ["forget_counters", "last_seen", "last_seen_of", "peer_counters_of"],
    "usage": [
        "add_node_daily",
        "add_usage",
        "erase_node_daily",
        "erase_usage_before",
        "node_daily",
        "recomputed_totals",
        "running_totals",
        "usage",
        "used_total",
    ],
    "ledger": ["apply_accounting", "sync_ledger"],
    "quota_pages": ["quota_page_of", "quota_pages"],
    "monitoring": [
        "configuration_state_counts",
        "enabled_peer_counts",
        "node_sync_times",
        "removal_counts",
    ],
    "billing": [
        "add_topup",
        "drop_notification",
        "erase_topups",
        "forget_warnings",
        "mark_warned",
        "pending_notifications",
        "plan",
        "plans",
        "queue_notifications",
        "remove_plan",
        "topup",
        "topups",
        "upsert_plan",
    ],
}

STORE_DIR = Path(orchestrator.adapters.store.__file__).parent


def oversized_or_undocumented(directory: Path, limit: int) -> list[str]:
    """Each module of ``directory`` longer than ``limit`` lines or without a docstring."""
    found = []
    for path in sorted(directory.glob("*.py")):
        text = path.read_text()
        count = len(text.splitlines())
        if count > limit:
            found.append(f"{path.name}: {count} lines, more than {limit}")
        if not ast.get_docstring(ast.parse(text)):
            found.append(f"{path.name}: no docstring saying what it owns")
    return found


def misplaced(store: type, expected: dict[str, list[str]]) -> list[str]:
    """Listed names ``store`` lacks or defines elsewhere than their module, and public names
    it has that the list lacks."""
    package = store.__module__.rpartition(".")[0]
    problems = []
    for module, names in expected.items():
        for name in names:
            owner = next((c for c in store.__mro__ if name in c.__dict__), None)
            if owner is None:
                problems.append(f"{name}: gone from {store.__name__}")
            elif owner.__module__ != f"{package}.{module}":
                problems.append(f"{name}: defined in {owner.__module__}, listed under {module}")
    listed = {name for names in expected.values() for name in names}
    problems += [
        f"{name}: public but not listed in STORE_NAMES"
        for name in dir(store)
        if not name.startswith("_") and name not in listed
    ]
    return problems


def test_every_store_module_is_small_and_says_what_it_owns() -> None:
    assert oversized_or_undocumented(STORE_DIR, MAX_LINES) == []


def test_the_checks_catch_a_long_module_and_a_lost_method(tmp_path: Path) -> None:
    (tmp_path / "grown.py").write_text('"""Owns a lot."""\n' + "x = 1\n" * 10)
    (tmp_path / "silent.py").write_text("x = 1\n")
    assert oversized_or_undocumented(tmp_path, 10) == [
        "grown.py: 11 lines, more than 10",
        "silent.py: no docstring saying what it owns",
    ]
    shrunk = {**STORE_NAMES, "billing": [*STORE_NAMES["billing"], "refund"]}
    moved = {**shrunk, "base": ["scrub", "transaction"], "nodes": ["close", *shrunk["nodes"]]}
    assert misplaced(SqlStore, moved) == [
        "close: defined in orchestrator.adapters.store.base, listed under nodes",
        "refund: gone from SqlStore",
    ]


def test_sqlstore_keeps_every_public_name_in_its_concern() -> None:
    assert misplaced(SqlStore, STORE_NAMES) == []


def test_no_two_concerns_define_the_same_name() -> None:
    """A name defined in two mixins would silently shadow one of them."""
    seen: dict[str, str] = {}
    twice = []
    for cls in SqlStore.__mro__[1:-1]:  # the concerns and the base, not SqlStore or object
        for name in cls.__dict__:
            if name.startswith("__"):
                continue
            if name in seen:
                twice.append(f"{name}: {seen[name]} and {cls.__name__}")
            seen[name] = cls.__name__
    assert twice == []
    assert [n for n in vars(SqlStore) if not n.startswith("__")] == []


def test_the_old_module_names_still_import(tmp_path: Path) -> None:
    from orchestrator.adapters.store import sql

    old_names = (
        "ACCOUNT_TABLES NOT_ACCOUNT_DATA Connection RowUsage RunningTotals SqlStore SyncLedger"
    )
    assert [name for name in old_names.split() if not hasattr(sql, name)] == []
    assert (sql.SqlStore, sql.RowUsage, sql.SyncLedger) == (SqlStore, RowUsage, SyncLedger)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    try:
        assert isinstance(store, SqlStore)
        assert (store.db.dialect, store.url) == ("sqlite", url)
    finally:
        store.close()
