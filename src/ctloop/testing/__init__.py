"""Tests of data, models and services for ML projects: plain functions that raise
:class:`CheckFailed` (an ``AssertionError``) whose message names the check, the rows or
feature and the numbers, and a pytest plugin (``pytest_plugins = ["ctloop.testing.plugin"]``).

>>> import pandas as pd
>>> from ctloop.testing import check_no_nulls, expect_direction
>>> check_no_nulls(pd.DataFrame({"x": [1.0, 2.0]}))
>>> expect_direction(lambda frame: frame["x"] * 3, pd.DataFrame({"x": [0.0, 1.0]}), "x")

A project's tests (``ctloop init`` writes these)::

    def test_late_flights_get_a_higher_risk(model, rows):
        expect_direction(model, rows, "dep_delay", increases=True)

    def test_the_service_answers(model, rows):
        with serve_model(model, name="flights") as served:
            check_service(served.url, rows.head(20), model_name="flights", latency_budget_ms=200)
"""

from __future__ import annotations

from ctloop.testing._data import (
    check_drift,
    check_no_nulls,
    check_ranges,
    check_schema,
    load_schema,
)
from ctloop.testing._failures import CheckFailed
from ctloop.testing._model import (
    check_finite_predictions,
    check_loss_decreases,
    check_overfits_tiny_batch,
    check_same_seed_same_model,
    check_slice_quality,
    expect_direction,
    expect_invariant,
)
from ctloop.testing._service import ServedModel, check_service, serve_model

__all__ = [
    "CheckFailed",
    "ServedModel",
    "check_drift",
    "check_finite_predictions",
    "check_loss_decreases",
    "check_no_nulls",
    "check_overfits_tiny_batch",
    "check_ranges",
    "check_same_seed_same_model",
    "check_schema",
    "check_service",
    "check_slice_quality",
    "expect_direction",
    "expect_invariant",
    "load_schema",
    "serve_model",
]
