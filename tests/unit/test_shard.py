from __future__ import annotations

import pytest

from orchestrator.core.shard import Shard, parse_shard


def test_shards_partition_the_fleet_evenly_enough() -> None:
    names = [f"node-{i}" for i in range(1000)]
    shards = [Shard(i, 4).select(names) for i in range(1, 5)]
    assert sorted(n for shard in shards for n in shard) == sorted(names)
    assert all(200 <= len(shard) <= 300 for shard in shards)


def test_adding_nodes_moves_no_other_node() -> None:
    before = Shard(2, 4).select(f"node-{i}" for i in range(500))
    after = Shard(2, 4).select(f"node-{i}" for i in range(1000))
    assert set(before) <= set(after)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("0/4", "expected I/N"), ("5/4", "between 1 and N"), ("1", "expected I/N"), ("a/b", "I/N")],
)
def test_a_bad_shard_is_named(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        parse_shard(text)
    assert repr(text) in str(raised.value)


def test_one_shard_of_one_is_the_whole_fleet() -> None:
    assert parse_shard("1/1").select(["b", "a"]) == ["a", "b"]
    assert str(parse_shard(" 3/8 ")) == "3/8"
