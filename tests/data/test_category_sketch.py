"""Category counts: exact up to a limit, then heavy hitters and a distinct-count sketch."""

from __future__ import annotations

import numpy as np

from ctloop.data._category_sketch import CategoryCounts


def test_category_counts_are_exact_up_to_the_limit() -> None:
    c = CategoryCounts.from_counts(np.array(["a", "b", "c"]), np.array([1, 5, 2]))
    assert c.exact and c.distinct == 3 and c.top(2) == [("b", 5), ("c", 2)]


def test_heavy_hitters_stay_within_the_misra_gries_bound() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.integers(0, 5000, 20_000), np.zeros(5000, dtype=int)]).astype(str)
    found, counts = np.unique(values, return_counts=True)
    sketch = CategoryCounts.from_counts(found[:3000], counts[:3000], max_values=100).merge(
        CategoryCounts.from_counts(found[3000:], counts[3000:], max_values=100)
    )
    true = dict(zip(found, counts))
    bound = sketch.total / (sketch.max_values + 1)
    assert not sketch.exact and sketch.top(1)[0][0] == "0"
    assert all(0 <= true[v] - c <= bound for v, c in zip(sketch.values, sketch.counts))


def test_distinct_count_estimate_is_within_four_standard_errors() -> None:
    values = np.array([f"user-{i}" for i in range(30_000)])
    sketch = CategoryCounts.from_counts(values, np.ones(values.size, dtype=int), kmv_size=1024)
    assert abs(sketch.distinct - 30_000) / 30_000 < 4 / np.sqrt(1022)


def test_category_counts_survive_a_round_trip_through_dicts() -> None:
    values = np.array([f"v{i}" for i in range(50)])
    c = CategoryCounts.from_counts(values, np.arange(1, 51), max_values=10)
    assert CategoryCounts.from_dict(c.to_dict()) == c
