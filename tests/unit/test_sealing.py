"""Sealing preshared keys under the fleet key: a value opens only under the key that sealed it,
unchanged and in the row it was sealed for; every failure is one line without the value."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.adapters.sealing import FleetKey, Keyring, UnsealError

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))
PSK = base64.b64encode(bytes(32)).decode()


def test_a_sealed_value_opens_under_its_key_and_reference_only() -> None:
    key = FleetKey.from_secret(SECRET)
    sealed = key.seal("psk:alice-1", PSK)
    assert PSK not in sealed and sealed.startswith("v1:")
    assert key.seal("psk:alice-1", PSK) != sealed  # a fresh nonce each time
    assert key.unseal("psk:alice-1", sealed) == PSK
    assert FleetKey.from_secret(SECRET).key_id == key.key_id  # any controller with the secret
    assert FleetKey.from_secret(OTHER).key_id != key.key_id


def test_another_fleet_secret_fails_cleanly() -> None:
    key, other = FleetKey.from_secret(SECRET), FleetKey.from_secret(OTHER)
    sealed = key.seal("psk:alice-1", PSK)
    with pytest.raises(UnsealError, match=f"sealed under fleet key {key.key_id}") as raised:
        Keyring(other).key(key.key_id, "psk:alice-1")
    assert "copy the fleet's current secret" in str(raised.value)
    with pytest.raises(UnsealError) as raised:
        other.unseal("psk:alice-1", sealed)  # even when the row's key id is not consulted
    assert PSK not in str(raised.value) and sealed not in str(raised.value)


@pytest.mark.parametrize("position", [3, 10, 30, -2])
def test_a_tampered_ciphertext_fails(position: int) -> None:
    key = FleetKey.from_secret(SECRET)
    sealed = key.seal("psk:alice-1", PSK)
    raw = bytearray(base64.b64decode(sealed[3:]))
    raw[position] ^= 0x01
    tampered = "v1:" + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(UnsealError, match="was changed, or moved"):
        key.unseal("psk:alice-1", tampered)
    for broken in ("v2:" + sealed[3:], "v1:not base64!", "v1:" + sealed[3:12], "", sealed[3:]):
        with pytest.raises(UnsealError):
            key.unseal("psk:alice-1", broken)


def test_a_ciphertext_is_bound_to_its_reference_and_key_id() -> None:
    key = FleetKey.from_secret(SECRET)
    sealed = key.seal("psk:alice-1", PSK)
    with pytest.raises(UnsealError, match="psk:bob-1"):
        key.unseal("psk:bob-1", sealed)  # copied onto another configuration's row
    with pytest.raises(UnsealError):
        key.unseal("psk:alice-1.2", sealed)  # or onto another generation of the same one
    relabelled = FleetKey("0" * 16, key._aead)  # the same key under another id
    with pytest.raises(UnsealError):
        relabelled.unseal("psk:alice-1", sealed)


def test_a_short_secret_makes_no_key() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        FleetKey.from_secret(bytes(31))


def test_a_rotation_keyring_opens_old_rows_and_seals_new_ones() -> None:
    old, new = FleetKey.from_secret(SECRET), FleetKey.from_secret(OTHER)
    ring = Keyring(new, (old,))
    sealed = old.seal("psk:a", PSK)
    assert ring.key(old.key_id, "psk:a").unseal("psk:a", sealed) == PSK
    assert ring.current is new


@given(
    ref=st.from_regex(r"psk:[a-z0-9][a-z0-9._-]{0,80}", fullmatch=True),
    value=st.text(min_size=0, max_size=200),
)
def test_any_value_round_trips_under_any_reference(ref: str, value: str) -> None:
    key = FleetKey.from_secret(SECRET)
    assert key.unseal(ref, key.seal(ref, value)) == value
