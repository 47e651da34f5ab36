"""The same store suite on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path

import pytest

from orchestrator.adapters.store import RowUsage, SqlStore, open_store
from orchestrator.adapters.store.base import VALUES_PER_STATEMENT
from orchestrator.adapters.store.schema import LATEST_VERSION, MIGRATIONS
from orchestrator.core.models import (
    Account,
    Configuration,
    DisabledReason,
    Node,
    Plan,
    ResetRule,
    TopUp,
)
from orchestrator.errors import NotFound, StoreError

A = ipaddress.IPv4Address


def node(name: str, index: int) -> Node:
    return Node(name, f"198.18.0.{9 + index}", ipaddress.IPv4Network(f"198.19.{index}.0/24"))


NO_USAGE = RowUsage([], [], [], [])  # a run that only moves last-seen counters


def seed(store: SqlStore) -> None:
    store.upsert_node(node("node1", 1))
    store.upsert_node(node("node2", 2))
    store.upsert_plan(Plan("basic", 10 * 2**30, ResetRule.MONTHLY, 5, "4.99"))
    store.add_account(Account("alice", "scrypt$x", "dev-a"))
    store.add_account(Account("bob", "scrypt$y", "dev-b", contact="+15550100"))
    store.add_configuration(
        Configuration(
            "alice-1",
            "alice",
            "PUBa1=",
            "psk/alice-1",
            {"node1": A("198.19.1.2"), "node2": A("198.19.2.2")},
            plan="basic",
        )
    )
    store.add_configuration(
        Configuration("bob-1", "bob", "PUBb1=", None, {"node1": A("198.19.1.3")}, quota_bytes=1000)
    )


def test_upgrade_is_versioned_and_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert store.schema_version() == 0
        with pytest.raises(StoreError, match="run `wgfleet db upgrade`"):
            store.require_current()
        assert store.upgrade() == [m.version for m in MIGRATIONS]
        assert store.upgrade() == []
        assert store.schema_version() == LATEST_VERSION
        store.require_current()
    finally:
        store.close()


def test_configurations_round_trip(store: SqlStore) -> None:
    seed(store)
    alice = store.configuration("alice-1")
    assert alice.account == "alice" and alice.plan == "basic" and alice.enabled
    assert alice.addresses == {"node1": A("198.19.1.2"), "node2": A("198.19.2.2")}
    assert alice.nodes == ("node1", "node2")
    assert [c.name for c in store.configurations(node="node2")] == ["alice-1"]
    assert [c.name for c in store.configurations(account="bob")] == ["bob-1"]
    assert store.taken_addresses("node1") == {A("198.19.1.2"), A("198.19.1.3")}
    assert store.plan("basic").anchor_day == 5
    assert store.account("bob").contact == "+15550100"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            Configuration("alice-1", "alice", "NEW=", None, {}),
            "configuration 'alice-1' already exists",
        ),
        (Configuration("alice-2", "alice", "PUBa1=", None, {}), "public key already exists"),
        (
            Configuration("alice-2", "alice", "NEW=", None, {"node1": A("198.19.1.3")}),
            "198.19.1.3 is already taken on node1",
        ),
        (
            Configuration("alice-2", "alice", "NEW=", None, {"node9": A("198.19.9.2")}),
            "no node 'node9'",
        ),
        (Configuration("carol-1", "carol", "NEW=", None, {}), "no account 'carol'"),
    ],
)
def test_bad_configurations_are_refused_and_nothing_is_half_written(
    store: SqlStore, config: Configuration, message: str
) -> None:
    seed(store)
    before = (store.configurations(), store.node_revisions())
    with pytest.raises(StoreError, match=message):
        store.add_configuration(config)
    assert (store.configurations(), store.node_revisions()) == before


def test_enable_disable_remove_bump_only_the_nodes_concerned(store: SqlStore) -> None:
    seed(store)
    revisions = store.node_revisions()
    changed = store.set_enabled(["bob-1"], False, DisabledReason.OPERATOR)
    assert [c.name for c in changed] == ["bob-1"]
    assert store.configuration("bob-1").disabled_reason == DisabledReason.OPERATOR
    after = store.node_revisions()
    assert after["node1"][0] == revisions["node1"][0] + 1
    assert after["node2"] == revisions["node2"]
    assert store.set_enabled(["bob-1"], False, DisabledReason.OPERATOR) == []
    store.set_enabled(["bob-1"], True, None)
    assert store.configuration("bob-1").enabled
    store.remove_configurations(["alice-1"])
    assert [c.name for c in store.configurations()] == ["bob-1"]
    assert store.taken_addresses("node2") == set()


def test_a_transaction_moves_a_node_once_however_many_writes_touch_it(store: SqlStore) -> None:
    seed(store)
    revisions = store.node_revisions()
    with store.transaction():
        store.set_enabled(["bob-1"], False, DisabledReason.OVER_QUOTA)
        store.set_enabled(["alice-1"], False, DisabledReason.EXPIRED)
    after = store.node_revisions()
    assert after["node1"][0] == revisions["node1"][0] + 1  # both live there
    assert after["node2"][0] == revisions["node2"][0] + 1
    store.set_enabled(["bob-1"], True, None)  # the next transaction moves it again
    store.set_enabled(["alice-1"], True, None)
    assert store.node_revisions()["node1"][0] == revisions["node1"][0] + 3
    with pytest.raises(RuntimeError), store.transaction():  # a rolled-back one moves nothing
        store.set_enabled(["bob-1"], False, DisabledReason.OPERATOR)
        raise RuntimeError
    assert store.node_revisions()["node1"][0] == revisions["node1"][0] + 3


def test_topups_are_idempotent_by_invoice(store: SqlStore) -> None:
    seed(store)
    topup = TopUp("INV-1", "alice-1", "4.99", 10 * 2**30, date(2026, 11, 23))
    assert store.add_topup(topup) == (topup, True)
    stored, created = store.add_topup(TopUp("INV-1", "alice-1", "9.99", 1, date(2026, 11, 24)))
    assert not created and stored == topup
    assert store.topups("alice-1") == [topup]


def test_usage_accumulates_per_billing_period(store: SqlStore) -> None:
    seed(store)
    store.add_usage("alice-1", date(2026, 11, 5), 100, 10)
    store.add_usage("alice-1", date(2026, 11, 5), 50, 5)
    store.add_usage("alice-1", date(2026, 12, 5), 1, 2)
    assert [(u.period_start, u.rx_bytes, u.tx_bytes) for u in store.usage("alice-1")] == [
        (date(2026, 11, 5), 150, 15),
        (date(2026, 12, 5), 1, 2),
    ]
    with pytest.raises(StoreError, match="negative usage"):
        store.add_usage("alice-1", date(2026, 12, 5), -1, 0)


def test_deleting_an_account_erases_configurations_and_usage_but_keeps_topups(
    store: SqlStore,
) -> None:
    seed(store)
    store.add_topup(TopUp("INV-7", "alice-1", "4.99", 100, date(2026, 11, 1)))
    store.add_usage("alice-1", date(2026, 11, 5), 100, 10)
    removed = store.delete_account("alice")
    assert [c.name for c in removed] == ["alice-1"] and removed[0].nodes == ("node1", "node2")
    assert [a.username for a in store.accounts()] == ["bob"]
    assert store.configurations(account="alice") == []
    assert store.usage() == []
    assert store.topups() == [TopUp("INV-7", None, "4.99", 100, date(2026, 11, 1))]
    with pytest.raises(StoreError, match="no account 'alice'"):
        store.delete_account("alice")


def test_a_failed_transaction_leaves_nothing(store: SqlStore) -> None:
    seed(store)
    with pytest.raises(StoreError), store.transaction():
        store.add_usage("alice-1", date(2026, 11, 5), 100, 10)
        store.set_enabled(["bob-1"], False, DisabledReason.OPERATOR)
        store.add_usage("nobody-1", date(2026, 11, 5), 1, 1)
    assert store.usage() == []
    assert store.configuration("bob-1").enabled


# What PRIVACY.md allows as a date, and why; any other time-like column fails the test below.
ALLOWED_DATES = {
    ("nodes", "key_created_on"),  # key age of the node's own key
    ("configurations", "key_created_on"),  # key age, not activity
    ("topups", "purchased_on"),  # a purchase is not VPN activity
    ("usage_totals", "period_start"),  # the billing period a running total belongs to
    ("configurations", "psk_created_on"),  # key age of the preshared key
    ("nodes", "next_key_created_on"),  # key age of a node's next key during an overlap
    ("controller_keys", "created_on"),  # key age of the controller's SSH keys
    # The only instants: when an operator-set grace ends (the rotation's time, never a user's).
    ("configurations", "previous_key_expires"),
    ("nodes", "next_key_expires"),
    # When a controller's claim on a node lapses: a run of the controller, never a user's.
    ("node_leases", "expires_at"),
    # How long a purchase stays valid: follows from buying a plan, never from using the VPN.
    ("plans", "valid_until"),
    ("configurations", "valid_until"),
    # The billing period a quota warning was sent for: a period, not a time of use.
    ("configurations", "warned_period"),
    # When a controller's writing run started and ended: the operator's trail, never a user's.
    ("operations", "started_at"),
    ("operations", "finished_at"),
    # The day an API token was made and its last valid day: the provider's credential, no user's.
    ("api_tokens", "created_on"),
    ("api_tokens", "expires_on"),
    # When the controller last reached a node's counters: a node's time (the metrics' last
    # successful sync), never a user's: every node answers every sync, whoever uses it.
    ("nodes", "last_sync_at"),
    # The day a controller was registered and revoked: the provider's machines, no user's.
    ("controllers", "added_on"),
    ("controllers", "revoked_on"),
}
FORBIDDEN_WORDS = (
    "until",
    "time",
    "date",
    "_at",
    "_on",
    "seen",
    "handshake",
    "endpoint",
    "session",
    "connect",
    "source",
    "login",
    "ip",
    "start",
    "end",
    "duration",
    "last",
    "expire",
)


def test_schema_keeps_no_record_of_user_activity(store: SqlStore) -> None:
    columns = store.columns()
    assert {
        "accounts",
        "configurations",
        "configuration_nodes",
        "usage_totals",
        "topups",
        "node_counters",
    } <= set(columns)
    offenders = []
    for table, names in columns.items():
        if table == "schema_migrations":
            continue
        for column in names:
            lowered = column.lower()
            if (table, column) in ALLOWED_DATES:
                continue
            if any(word in lowered for word in FORBIDDEN_WORDS) and column not in (
                "last_push_ok",
                "last_sync_ok",
                "last_audit_ok",
                "listen_port",
            ):
                offenders.append(f"{table}.{column}")
    assert offenders == []


def test_the_privacy_guard_catches_a_new_timestamp_column(store: SqlStore) -> None:
    with store.transaction():
        store.db.execute("ALTER TABLE usage_totals ADD COLUMN last_seen TEXT")
    with pytest.raises(AssertionError, match=r"usage_totals\.last_seen"):
        test_schema_keeps_no_record_of_user_activity(store)


def test_closed_periods_past_retention_are_erased_with_their_running_totals(
    store: SqlStore,
) -> None:
    from orchestrator.core.quota import NEVER_RESETS

    seed(store)
    store.add_usage("alice-1", date(2025, 1, 5), 100, 0)
    store.add_usage("alice-1", date(2026, 11, 5), 7, 0)
    store.add_usage("bob-1", NEVER_RESETS, 50, 0)
    assert store.erase_usage_before(date(2026, 1, 1), NEVER_RESETS) == 1
    assert [(u.configuration, u.period_start) for u in store.usage()] == [
        ("alice-1", date(2026, 11, 5)),
        ("bob-1", NEVER_RESETS),
    ]
    assert store.running_totals().used == 7 + 50
    assert store.running_totals() == store.recomputed_totals()
    store.remove_configurations(["bob-1"])
    assert store.running_totals().used == 7
    assert store.running_totals() == store.recomputed_totals()


def key_owners(store: SqlStore) -> dict[str, str]:
    """Public key -> configuration, as a sync's ledger reads them."""
    ledger = store.sync_ledger()
    return {key: ledger.names[entry] for key, entry in ledger.owners.items()}


def test_a_peer_rotation_keeps_identity_and_maps_both_keys_until_retired(store: SqlStore) -> None:
    from orchestrator.core.accounting import LastSeen

    seed(store)
    store.add_usage("alice-1", date(2026, 11, 5), 100, 50)
    revisions = store.node_revisions()
    rotated = store.begin_peer_rotation(
        "alice-1", "PUBa2=", "psk/alice-1.1", date(2026, 11, 23), 5000
    )
    assert (rotated.public_key, rotated.previous_public_key) == ("PUBa2=", "PUBa1=")
    assert (rotated.psk_ref, rotated.previous_psk_ref) == ("psk/alice-1.1", "psk/alice-1")
    assert rotated.key_created_on == rotated.psk_created_on == date(2026, 11, 23)
    assert rotated.addresses == store.configuration("alice-1").addresses
    assert rotated.plan == "basic"
    assert store.usage("alice-1")[0].total == 150
    owners = key_owners(store)
    assert owners["PUBa1="] == owners["PUBa2="] == "alice-1"
    assert all(store.node_revisions()[n][0] > revisions[n][0] for n in ("node1", "node2"))
    with pytest.raises(StoreError, match="already rotating"):
        store.begin_peer_rotation("alice-1", "PUBa3=", None, date(2026, 11, 23), 6000)
    with pytest.raises(StoreError, match="public key already exists"):
        store.begin_peer_rotation("bob-1", "PUBa1=", None, date(2026, 11, 23), 6000)

    assert store.rotations_ending(4999) == []
    assert [c.name for c in store.rotations_ending(5000)] == ["alice-1"]
    store.apply_accounting(
        NO_USAGE, {"node1": {"PUBa1=": LastSeen("e", 0, 0), "PUBa2=": LastSeen("e", 1, 1)}}
    )
    assert store.retire_ended_keys(4999) == []
    revisions = store.node_revisions()
    [before] = store.retire_ended_keys(5000)
    assert before.previous_psk_ref == "psk/alice-1"
    assert store.configuration("alice-1").previous_public_key is None
    assert store.rotations_ending(10**12) == []
    assert all(store.node_revisions()[n][0] > revisions[n][0] for n in ("node1", "node2"))
    # The replaced key leaves each node it was on, still billing alice-1 until it has.
    assert store.pending_removals() == {"node1": {"PUBa1="}, "node2": {"PUBa1="}}
    assert key_owners(store)["PUBa1="] == "alice-1"
    assert not store.confirm_removals("node1", {"PUBa1="}, {"PUBa1="})
    assert set(store.last_seen("node1")) == {"PUBa2="}
    assert store.confirm_removals("node2", {"PUBa1="}, {"PUBa1="}) is False
    assert store.pending_removals() == {} and "PUBa1=" not in key_owners(store)


def test_node_rotation_state_and_controller_keys(store: SqlStore) -> None:
    seed(store)
    store.begin_node_rotation("node1", "NEXT1=", 51821, 7000, date(2026, 11, 23))
    rotating = store.node("node1")
    assert rotating.rotating and rotating.issued_key == "NEXT1=" and rotating.issued_port == 51821
    finished = store.finish_node_rotation("node1")
    assert (finished.public_key, finished.listen_port, finished.key_created_on) == (
        "NEXT1=",
        51821,
        date(2026, 11, 23),
    )
    assert not finished.rotating
    with pytest.raises(StoreError, match="no key rotation in progress"):
        store.finish_node_rotation("node1")
    store.set_node_key("node2", "NEW2=", date(2026, 11, 20))
    assert store.node("node2").public_key == "NEW2="
    store.record_controller_key("deploy", "ssh-ed25519 AAAA", date(2026, 1, 1))
    store.record_controller_key("deploy", "ssh-ed25519 BBBB", date(2026, 11, 23))
    assert store.controller_keys() == {"deploy": ("ssh-ed25519 BBBB", date(2026, 11, 23))}


def test_audit_verdicts_are_kept_per_node(store: SqlStore) -> None:
    seed(store)
    assert store.node_audits() == {"node1": None, "node2": None}
    store.mark_audited({"node1": True, "node2": False, "gone": True})
    assert store.node_audits() == {"node1": True, "node2": False}


def test_v8_moves_last_seen_counters_and_the_used_total_without_losing_a_byte(
    store_url: str,
) -> None:
    from orchestrator.core.accounting import LastSeen

    store = open_store(store_url)
    try:
        store.upgrade(up_to=7)
        db = store.db
        db.execute(
            "INSERT INTO nodes (name, address, tunnel_network) VALUES ('n1', '198.18.0.2', '198.19.0.0/24')"
        )
        db.execute(
            "INSERT INTO accounts (username, password_hash, device_id) VALUES ('u', 'x', 'x')"
        )
        db.execute(
            "INSERT INTO configurations (name, account_id, public_key, used_bytes) "
            "SELECT 'c1', id, 'K1=', 30 FROM accounts"
        )
        db.execute(
            "INSERT INTO usage_totals (configuration_id, period_start, rx_bytes, tx_bytes) "
            "SELECT id, '2026-11-01', 10, 20 FROM configurations"
        )
        db.executemany(
            "INSERT INTO peer_counters (node, public_key, epoch, rx_bytes, tx_bytes) "
            "VALUES (?, ?, ?, ?, ?)",
            [("n1", "K1=", "boot-a", 10, 20), ("n1", "next:K1=", "boot-b", 0, 0)],
        )
        assert store.upgrade() == [m.version for m in MIGRATIONS if m.version > 7]
        assert store.last_seen("n1") == {
            "K1=": LastSeen("boot-a", 10, 20),
            "next:K1=": LastSeen("boot-b", 0, 0),
        }
        assert store.running_totals().used == 30
        assert store.running_totals() == store.recomputed_totals()
    finally:
        store.close()


def test_usage_check_finds_a_total_changed_behind_the_store_s_back(store: SqlStore) -> None:
    from orchestrator.service.context import Fleet
    from orchestrator.service.usage import usage_check

    seed(store)
    store.add_usage("alice-1", date(2026, 11, 5), 100, 0)
    fleet = Fleet(settings=None, store=store, secrets=None, writes=True)  # type: ignore[arg-type]
    assert usage_check(fleet) == []
    store.db.execute("UPDATE usage_totals SET rx_bytes = rx_bytes + 1")
    store.db.execute(
        "UPDATE configurations SET granted_bytes = granted_bytes + 5 WHERE name = 'bob-1'"
    )
    found = {(m.subject, m.kind, m.stored, m.recomputed) for m in usage_check(fleet)}
    bob_granted = store.recomputed_totals().granted["bob-1"]
    assert found == {
        ("bob-1", "granted", bob_granted + 5, bob_granted),
        ("store", "used", 100, 101),
    }
    store.db.execute("UPDATE usage_totals SET rx_bytes = rx_bytes - 1")
    store.delete_account("alice")  # her usage leaves the kept total with her
    assert [m.kind for m in usage_check(fleet)] == ["granted"]
    assert store.running_totals().used == 0


def test_an_erased_account_leaves_no_trace_in_the_store_s_files(store: SqlStore) -> None:
    """After delete + scrub, the username (also inside configuration names and psk refs) and
    its keys are nowhere in the SQLite main file, its WAL or its shared-memory index."""
    from orchestrator.core.accounting import LastSeen

    if store.db.dialect != "sqlite":
        assert store.scrub()  # VACUUM; the server's files are the server operator's
        return
    seed(store)
    store.add_account(Account("zorrowhisk", "scrypt$z", "dev-z", contact="+15550199"))
    store.add_configuration(
        Configuration(
            "zorrowhisk-1",
            "zorrowhisk",
            "PUBzorrowhiskKEY=",
            "psk/zorrowhisk-1",
            {"node1": A("198.19.1.9")},
        )
    )
    store.add_usage("zorrowhisk-1", date(2026, 11, 5), 100, 10)
    store.apply_accounting(
        NO_USAGE,
        {"node1": {"PUBzorrowhiskKEY=": LastSeen("e", 5, 5), "PUBb1=": LastSeen("e", 1, 1)}},
    )
    store.delete_account("zorrowhisk")
    # Its key stays, unlinked, until node1 confirms the removal (the push that follows).
    assert store.pending_removals() == {"node1": {"PUBzorrowhiskKEY="}}
    assert store.confirm_removals("node1", {"PUBzorrowhiskKEY="}, {"PUBzorrowhiskKEY="})
    assert store.scrub()
    assert set(store.last_seen("node1")) == {"PUBb1="}
    path = Path(store.url.removeprefix("sqlite:///"))
    files = [f for f in path.parent.iterdir() if f.name.startswith(path.name)]
    assert path in files
    for file in files:
        raw = file.read_bytes().lower()
        for trace in (b"zorrowhisk", b"+15550199"):
            assert trace not in raw, f"{trace!r} survives in {file.name}"
    assert b"PUBb1=".lower() in path.read_bytes().lower()  # the search does read live rows


def test_counters_of_peers_no_configuration_owns_are_not_kept(store: SqlStore) -> None:
    from orchestrator.core.accounting import Sample
    from orchestrator.service.context import Fleet
    from orchestrator.service.usage import Observation, account_observations

    seed(store)
    fleet = Fleet(settings=None, store=store, secrets=None, writes=True)  # type: ignore[arg-type]
    samples = [Sample("PUBa1=", 10, 10), Sample("PUBstranger=", 7, 7)]
    account_observations(fleet, [Observation("node1", "e", samples)], date(2026, 11, 23))
    assert set(store.last_seen("node1")) == {"PUBa1="}
    removed = [Sample("PUBa1=", 12, 10)]
    account_observations(fleet, [Observation("node1", "e", removed, True)], date(2026, 11, 23))
    assert store.last_seen("node1") == {}
    assert sum(u.total for u in store.usage("alice-1")) == 22


def test_every_table_is_either_exported_with_its_account_or_declared_not_account_data(
    store: SqlStore,
) -> None:
    from orchestrator.adapters.store.sql import ACCOUNT_TABLES, NOT_ACCOUNT_DATA

    assert set(store.columns()) == set(ACCOUNT_TABLES) | set(NOT_ACCOUNT_DATA)
    assert not set(ACCOUNT_TABLES) & set(NOT_ACCOUNT_DATA)


def test_an_account_export_holds_exactly_the_store_s_rows(store: SqlStore) -> None:
    from orchestrator.core.accounting import LastSeen

    seed(store)
    store.add_topup(TopUp("INV-9", "alice-1", "4.99", 100, date(2026, 11, 1)))
    store.add_usage("alice-1", date(2026, 11, 5), 100, 10)
    store.apply_accounting(
        NO_USAGE, {"node2": {"PUBa1=": LastSeen("e", 5, 6), "PUBb1=": LastSeen("e", 1, 1)}}
    )
    records = store.account_records("alice")
    assert records["accounts"] == [
        {"username": "alice", "password_hash": "scrypt$x", "device_id": "dev-a", "contact": None}
    ]
    (config,) = records["configurations"]
    assert config["name"] == "alice-1" and config["public_key"] == "PUBa1="
    assert config["psk_ref"] == "psk/alice-1" and config["plan"] == "basic"
    assert config["granted_bytes"] == 100
    stored = store.columns()
    assert set(config) == set(stored["configurations"]) - {"id", "account_id"}
    assert sorted((r["node"], r["tunnel_address"]) for r in records["configuration_nodes"]) == [
        ("node1", "198.19.1.2"),
        ("node2", "198.19.2.2"),
    ]
    assert records["usage_totals"] == [
        {"configuration": "alice-1", "period_start": "2026-11-05", "rx_bytes": 100, "tx_bytes": 10}
    ]
    assert [(t["configuration"], t["invoice"]) for t in records["topups"]] == [("alice-1", "INV-9")]
    assert records["node_counters"] == [
        {"node": "node2", "public_key": "PUBa1=", "epoch": "e", "rx_bytes": 5, "tx_bytes": 6}
    ]
    for table in ("configuration_nodes", "usage_totals", "topups"):
        count = store.db.execute(
            f"SELECT count(*) FROM {table} t JOIN configurations c ON c.id = t.configuration_id "
            "WHERE c.name = 'alice-1'"
        )[0][0]
        assert len(records[table]) == count, table
    store.delete_account("alice")
    with pytest.raises(NotFound, match="no account 'alice'"):
        store.account_records("alice")


def test_node_failures_are_reported_once_per_occurrence(store: SqlStore) -> None:
    seed(store)
    assert store.mark_sync_failed(["node1"]) == ["node1"]
    assert store.mark_sync_failed(["node1", "node2"]) == ["node2"]
    assert store.mark_sync_failed(["node1", "nodeX"]) == []
    assert store.mark_audited({"node1": False, "node2": True}) == ["node1"]
    assert store.mark_audited({"node1": False, "node2": False}) == ["node2"]
    assert store.mark_audited({"node1": True}) == []
    assert store.mark_audited({"node1": False}) == ["node1"]


def test_v11_reads_counters_written_before_it_and_forgets_keys_in_them(store_url: str) -> None:
    from orchestrator.core.accounting import LastSeen, Sample
    from orchestrator.service.context import Fleet
    from orchestrator.service.usage import Observation, account_observations

    store = open_store(store_url)
    try:
        store.upgrade(up_to=10)
        seed(store)
        store.db.execute(
            "INSERT INTO node_counters (node, counters) VALUES "
            "('node1', 'PUBa1=' || char(9) || 'e' || char(9) || '10' || char(9) || '20' || char(10) "
            "|| 'PUBb1=' || char(9) || 'e' || char(9) || '1' || char(9) || '2'), "
            "('node2', 'PUBa1=' || char(9) || 'e' || char(9) || '5' || char(9) || '5')"
            if store.db.dialect == "sqlite"
            else "INSERT INTO node_counters (node, counters) VALUES "
            "('node1', 'PUBa1=' || chr(9) || 'e' || chr(9) || '10' || chr(9) || '20' || chr(10) "
            "|| 'PUBb1=' || chr(9) || 'e' || chr(9) || '1' || chr(9) || '2'), "
            "('node2', 'PUBa1=' || chr(9) || 'e' || chr(9) || '5' || chr(9) || '5')"
        )
        assert store.upgrade() == [m.version for m in MIGRATIONS if m.version >= 11]
        assert store.last_seen("node1") == {
            "PUBa1=": LastSeen("e", 10, 20),
            "PUBb1=": LastSeen("e", 1, 2),
        }
        if store.db.dialect == "postgresql":
            options = dict(
                store.db.execute(
                    "SELECT relname, array_to_string(reloptions, ',') FROM pg_class "
                    "WHERE relname IN ('usage_totals', 'node_counters')"
                )
            )
            assert options == {"usage_totals": "fillfactor=50", "node_counters": "fillfactor=50"}
        fleet = Fleet(settings=None, store=store, secrets=None, writes=True)  # type: ignore[arg-type]
        samples = [Sample("PUBa1=", 15, 20), Sample("PUBb1=", 1, 2)]
        account_observations(fleet, [Observation("node1", "e", samples)], date(2026, 11, 23))
        assert sum(u.total for u in store.usage("alice-1")) == 5  # only what moved since
        assert store.db.execute("SELECT peers FROM node_counters WHERE node = 'node1'") == [
            ("PUBa1=\nPUBb1=",)
        ]
        store.delete_account("alice")  # forgets PUBa1= in the new row and in the old one
        assert store.last_seen("node1") == {"PUBb1=": LastSeen("e", 1, 2)}
        assert store.last_seen("node2") == {}
    finally:
        store.close()


def test_the_sync_ledger_reads_names_it_cannot_split_row_by_row(store: SqlStore) -> None:
    seed(store)
    fast = store.sync_ledger()
    assert fast == store._sync_ledger_by_rows()
    by_entry = dict(zip(fast.names, zip(fast.ids, fast.plan_of, strict=True), strict=True))
    assert by_entry["alice-1"][1] == "basic" and by_entry["bob-1"][1] is None
    assert {k: fast.names[e] for k, e in fast.owners.items()} == {
        "PUBa1=": "alice-1",
        "PUBb1=": "bob-1",
    }
    store.db.execute(
        "UPDATE configurations SET name = 'bob' || ? || '1' WHERE name = 'bob-1'", ("\t",)
    )
    odd = store.sync_ledger()
    assert sorted(odd.names) == ["alice-1", "bob\t1"]
    assert {k: odd.names[e] for k, e in odd.owners.items()}["PUBb1="] == "bob\t1"


def test_a_run_sums_a_configuration_over_nodes_and_keys_and_keeps_totals(store: SqlStore) -> None:
    from orchestrator.core.accounting import Sample
    from orchestrator.service.context import Fleet
    from orchestrator.service.usage import Observation, account_observations, usage_check

    seed(store)
    store.begin_peer_rotation("alice-1", "PUBa2=", None, date(2026, 11, 23), 5000)
    fleet = Fleet(settings=None, store=store, secrets=None, writes=True)  # type: ignore[arg-type]
    day = date(2026, 11, 23)
    first = [
        Observation("node1", "e", [Sample("PUBa1=", 10, 1), Sample("PUBb1=", 3, 3)]),
        Observation("node1", "x", [Sample("next:PUBa2=", 5, 5)]),
        Observation("node2", "e", [Sample("PUBa2=", 7, 0), Sample("PUBa1=", 1, 1)]),
    ]
    results = account_observations(fleet, first, day)
    assert [r.bytes_added for r in results] == [17, 10, 9]
    assert results[0].usage == {"alice-1": (10, 1), "bob-1": (3, 3)}
    assert sum(u.total for u in store.usage("alice-1")) == 11 + 10 + 9
    assert [u.period_start for u in store.usage("alice-1")] == [date(2026, 11, 5)]
    again = account_observations(fleet, first, day)  # a replay adds nothing
    assert [r.bytes_added for r in again] == [0, 0, 0]
    later = [Observation("node2", "e", [Sample("PUBa2=", 9, 0), Sample("PUBa1=", 1, 4)])]
    account_observations(fleet, later, day)
    assert sum(u.total for u in store.usage("alice-1")) == 30 + 5
    assert set(store.last_seen("node1")) == {"PUBa1=", "PUBb1=", "next:PUBa2="}
    assert usage_check(fleet) == []


def test_two_runs_landing_the_same_new_usage_row_at_once_add_up(store_url: str) -> None:
    """A shard's run inserts a configuration's usage row while another run, on another node of
    it, is about to: the second adds to the first's row (on PostgreSQL through the conflict
    clause, on SQLite by waiting for the write lock) and the used-bytes total stays exact."""
    import threading
    import time

    from orchestrator.core.accounting import Sample
    from orchestrator.service.context import Fleet
    from orchestrator.service.usage import Observation, account_observations, usage_check

    day = date(2026, 11, 23)
    first = open_store(store_url)
    try:
        first.upgrade()
        seed(first)
        errors: list[BaseException] = []

        def other_run() -> None:
            second = open_store(store_url)  # a connection of its own, as another controller
            fleet = Fleet(settings=None, store=second, secrets=None, writes=True)  # type: ignore[arg-type]
            try:
                account_observations(
                    fleet, [Observation("node2", "e", [Sample("PUBa1=", 7, 1)])], day
                )
            except BaseException as exc:  # handed to the test's thread
                errors.append(exc)
            finally:
                second.close()

        fleet = Fleet(settings=None, store=first, secrets=None, writes=True)  # type: ignore[arg-type]
        runner = threading.Thread(target=other_run)
        with first.transaction():
            account_observations(fleet, [Observation("node1", "e", [Sample("PUBa1=", 10, 2)])], day)
            runner.start()
            time.sleep(0.5)  # the other run reads its ledger and blocks on this run's row
        runner.join(30)
        assert not runner.is_alive() and errors == []
        assert [(u.period_start, u.rx_bytes, u.tx_bytes) for u in first.usage("alice-1")] == [
            (date(2026, 11, 5), 17, 3)
        ]
        assert usage_check(fleet) == []
    finally:
        first.close()


def test_v13_gives_a_store_from_before_it_ipv6_for_every_configuration(store_url: str) -> None:
    """A store made before dual-stack (schema 12) upgrades: the fleet gets its prefix (the
    settings' here), every node a /64 in name order, every configuration its /128 derived
    from its IPv4 address, and every node a full push that carries them."""
    from orchestrator.core.addressing import TunnelNetworks
    from orchestrator.core.peers import desired_peers

    store = open_store(store_url)
    try:
        store.upgrade(up_to=12)
        seed(store)
        before = store.node_revisions()
        prefix = ipaddress.IPv6Network("fd00:198:19::/48")
        assert store.upgrade(ipv6_prefix=prefix) == [
            m.version for m in MIGRATIONS if m.version >= 13
        ]
        assert store.ipv6_prefix() == prefix
        nodes = {n.name: n for n in store.nodes()}
        assert {n: str(v.tunnel_network6) for n, v in nodes.items()} == {
            "node1": "fd00:198:19:1::/64",
            "node2": "fd00:198:19:2::/64",
        }
        found = {}
        for config in store.configurations():
            for name in config.nodes:
                node = nodes[name]
                tunnels = TunnelNetworks(node.tunnel_network, node.tunnel_network6)
                (peer,) = desired_peers(name, [config], tunnels=tunnels)
                found[(config.name, name)] = peer.allowed_ips
        assert found == {
            ("alice-1", "node1"): "198.19.1.2/32,fd00:198:19:1::2/128",
            ("alice-1", "node2"): "198.19.2.2/32,fd00:198:19:2::2/128",
            ("bob-1", "node1"): "198.19.1.3/32,fd00:198:19:1::3/128",
        }
        # The nodes' revisions moved: their next push is a full one, never a delta.
        after = store.node_revisions()
        assert all(after[n][0] == before[n][0] + 1 for n in before), (before, after)
        # A node added later takes the first free /64 and keeps it.
        assert str(store.node_networks6(["node3"])["node3"]) == "fd00:198:19:3::/64"
        assert store.node_networks6(["node3", "node1"]) == {
            "node1": nodes["node1"].tunnel_network6,
            "node3": ipaddress.IPv6Network("fd00:198:19:3::/64"),
        }
        # The prefix cannot move under nodes that have a /64.
        with pytest.raises(StoreError, match="cannot change"):
            store.set_ipv6_prefix(ipaddress.IPv6Network("fd12:3456:789a::/48"))
    finally:
        store.close()


def test_a_new_store_draws_a_random_ula_prefix(store_url: str) -> None:
    from orchestrator.core.addressing import prefix_problem

    store = open_store(store_url)
    try:
        store.upgrade()
        prefix = store.ipv6_prefix()
        assert prefix_problem(str(prefix)) is None
        # Settable while no node has a /64.
        store.set_ipv6_prefix(ipaddress.IPv6Network("fd12:3456:789a::/48"))
        assert str(store.ipv6_prefix()) == "fd12:3456:789a::/48"
    finally:
        store.close()


def test_a_split_tunnel_is_kept_with_the_configuration(store: SqlStore) -> None:
    seed(store)
    store.add_configuration(
        Configuration(
            "bob-2", "bob", "PUBb2=", None, {"node1": A("198.19.1.9")}, split_tunnel="198.18.0.0/16"
        )
    )
    assert store.configuration("bob-2").split_tunnel == "198.18.0.0/16"
    assert store.configuration("bob-1").split_tunnel is None


def test_reads_and_writes_by_name_span_several_statements_whole(store: SqlStore) -> None:
    """More names than one statement binds (SQLite's older builds: 999) are read, held and
    disabled in chunks, with every configuration and placement once, in name order."""
    from tests.synthetic_fleet import populate

    populate(store, [f"198.18.0.{i}" for i in range(1, 8)], 100)  # 700, on one node each
    names = sorted(c.name for c in store.configurations(placements=False))
    assert len(names) == 700 > 2 * VALUES_PER_STATEMENT
    wanted = names[::-1] + names[:5]  # any order, repeats
    found = store.configurations(names=wanted)
    assert [c.name for c in found] == names
    assert all(len(c.addresses) == 1 for c in found)
    with store.transaction():
        store.hold_configurations(wanted)
        changed = store.set_enabled(names[:650], False, DisabledReason.OPERATOR)
    assert len(changed) == 650
    assert [c.name for c in store.configurations(enabled=True)] == names[650:]
