"""The suite's verdicts: each benchmark's target text read against its row."""

from __future__ import annotations

import pytest

from tests.bench.report import target_met
from tests.bench.suite import rows_of


@pytest.mark.parametrize(
    ("row", "met"),
    [
        ({"ratio": 0.09, "wall_s": 14.5, "target": "<= 0.1, <= 25 s"}, True),
        ({"ratio": 0.11, "wall_s": 14.5, "target": "<= 0.1, <= 25 s"}, False),
        ({"ratio": 0.09, "wall_s": 26.0, "target": "<= 0.1, <= 25 s"}, False),
        ({"ratio": 1.7, "lines_per_s": 1.8e6, "target": "<= 2, >= 0.5 M/s"}, True),
        ({"ratio": 1.7, "lines_per_s": 0.4e6, "target": "<= 2, >= 0.5 M/s"}, False),
        ({"peak_rss_mb": 251, "target": "<= 250 MB"}, False),
        ({"rows_per_s": 150_000, "target": ">= 150,000/s"}, True),
        ({"rows_per_s": 149_999, "target": ">= 150,000/s"}, False),
        ({"wall_s": 0.057, "target": "<= 100 ms"}, True),
        ({"wall_s": 0.101, "target": "<= 100 ms"}, False),
        ({"wall_s": 1.0, "target": "reference"}, None),
        ({"wall_s": 1.0, "target": "for comparison"}, None),
        ({"wall_s": 1.0}, None),
        ({"target": "<= 1.5"}, None),  # nothing measured to judge
    ],
)
def test_a_target_is_judged_on_the_figure_its_unit_names(row: dict, met: bool | None) -> None:
    assert target_met(row) is met


def test_the_store_rows_carry_the_store_targets() -> None:
    report = {
        "results": [
            {"backend": "sqlite", "case": "apply all changed (accounting + store)",
             "rows_per_s": 149_000.0, "ratio_to_reference": 2.5},
            {"backend": "postgresql", "case": "apply all changed (accounting + store)",
             "rows_per_s": 160_000.0, "ratio_to_reference": 4.3},
            {"backend": "sqlite", "case": "replay (adds 0)", "rows_per_s": 1e6},
        ]
    }  # fmt: skip
    rows = rows_of("store", report)
    assert [target_met(r) for r in rows] == [False, True, None]
    assert rows[0]["case"] == "store sqlite: apply all changed (accounting + store)"
    assert rows[0]["ratio"] == 2.5


def test_a_benchmark_that_failed_is_a_missed_row() -> None:
    assert rows_of("fleet", {"error": "bench_fleet exited 1"}) == [
        {"case": "bench_fleet exited 1", "met": False}
    ]
