"""The sync's count of configurations billed: each id once, however many batches bill it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.id_set import IdSet


@given(st.lists(st.lists(st.integers(min_value=0, max_value=10**6), max_size=50), max_size=8))
def test_an_id_set_counts_and_holds_what_a_set_of_ints_does(batches: list[list[int]]) -> None:
    ids = IdSet()
    plain: set[int] = set()
    for batch in batches:
        ids.update(batch)
        plain.update(batch)
    assert len(ids) == len(plain)
    assert all(i in ids for i in plain)
    assert not any(i in ids for i in range(20) if i not in plain)
    assert -1 not in ids and "1" not in ids


def test_a_negative_id_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative, not -3"):
        IdSet().update([-3])
