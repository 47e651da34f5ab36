"""Sealed secrets in the store, on SQLite and on a real PostgreSQL: written with the caller's
transaction, resealed whole or not at all, and absent from a dump of the store."""

from __future__ import annotations

import base64
import os

import pytest

from orchestrator.adapters.sealing import FleetKey, Keyring
from orchestrator.adapters.secrets import SecretStore
from orchestrator.adapters.store import SqlStore, open_store
from tests.pgserver import fresh_database, pg_dump

KEY = FleetKey.from_secret(bytes(range(32)))
NEXT = FleetKey.from_secret(bytes(range(1, 33)))


def _psk() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _secrets(store: SqlStore, key: FleetKey = KEY) -> SecretStore:
    return SecretStore(store, lambda: Keyring(key))


def test_a_secret_is_sealed_read_replaced_and_deleted(store: SqlStore) -> None:
    secrets = _secrets(store)
    value, again = _psk(), _psk()
    ref = secrets.put_psk("alice-1", value)
    assert ref == "psk:alice-1" and secrets.get(ref) == value
    ((stored_ref, key_id, sealed),) = store.sealed_secrets()
    assert (stored_ref, key_id) == (ref, KEY.key_id) and value not in sealed
    secrets.put_psk("alice-1", again)
    assert secrets.get(ref) == again and len(store.sealed_secrets()) == 1
    opened = secrets.get_many([ref, "psk:nobody-1"])
    assert opened[ref] == again and "missing from the store" in str(opened["psk:nobody-1"])
    secrets.delete(ref)
    assert store.sealed_secrets() == []


def test_a_secret_lands_with_its_transaction_or_not_at_all(store: SqlStore) -> None:
    secrets = _secrets(store)
    with pytest.raises(RuntimeError), store.transaction():
        secrets.put_psk("alice-1", _psk())
        raise RuntimeError("the configuration was refused")
    assert store.sealed_secrets() == []


def test_the_first_key_id_claimed_is_the_fleets(store: SqlStore) -> None:
    assert store.fleet_key_id() is None
    assert store.claim_fleet_key_id(KEY.key_id) == KEY.key_id
    assert store.claim_fleet_key_id(NEXT.key_id) == KEY.key_id  # a second claim loses


def test_a_reseal_moves_every_row_and_the_key_id_together(store: SqlStore) -> None:
    store.claim_fleet_key_id(KEY.key_id)
    secrets = _secrets(store)
    values = {secrets.put_psk(f"c-{i}", _psk()): None for i in range(3)}
    values = {ref: secrets.get(ref) for ref in values}
    ring = Keyring(NEXT, (KEY,))
    rows = store.sealed_secrets()
    resealed = [(r, NEXT.seal(r, ring.key(k, r).unseal(r, s))) for r, k, s in rows]
    with pytest.raises(RuntimeError), store.transaction():
        store.reseal(resealed, NEXT.key_id)
        raise RuntimeError("stopped before the commit")
    assert store.sealed_secrets() == rows and store.fleet_key_id() == KEY.key_id
    store.reseal(resealed, NEXT.key_id)
    assert store.fleet_key_id() == NEXT.key_id
    assert {ref: _secrets(store, NEXT).get(ref) for ref in values} == values


def test_migration_17_adds_the_tables_to_an_existing_store(store_url: str) -> None:
    opened = open_store(store_url)
    try:
        opened.upgrade(up_to=16)
        assert "sealed_secrets" not in opened.columns()
        assert opened.upgrade(up_to=17) == [17]
        columns = opened.columns()
        assert columns["sealed_secrets"] == ["ref", "key_id", "sealed"]
        assert columns["fleet_key"] == ["id", "key_id"]
    finally:
        opened.close()


def test_a_pg_dump_holds_no_preshared_key(postgres_server: str) -> None:
    url = fresh_database(postgres_server)
    store = open_store(url)
    try:
        store.upgrade()
        secrets = _secrets(store)
        values = [_psk() for _ in range(5)]
        for index, value in enumerate(values):
            secrets.put_psk(f"dump-{index}", value)
    finally:
        store.close()
    dump = pg_dump(url)
    assert "psk:dump-4" in dump and KEY.key_id in dump  # the rows are in it
    for value in values:
        assert value not in dump
        assert base64.b64decode(value).hex() not in dump  # nor as bytes
