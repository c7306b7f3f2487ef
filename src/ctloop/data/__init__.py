"""Data statistics, schemas, validation and drift — computed from statistics, not rows.

>>> import pandas as pd
>>> from ctloop.data import compute_statistics, detect_drift, infer_schema, validate
>>> train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
>>> stats = compute_statistics(train)
>>> validate(train, infer_schema(stats)).ok
True
>>> detect_drift(stats, train).drifted
False
"""

from __future__ import annotations

from ctloop.data._anomalies import Anomalies, Anomaly, validate
from ctloop.data._drift import ColumnDrift, ColumnTest, DriftConfig, DriftReport, detect_drift
from ctloop.data._schema import ColumnSchema, Schema, infer_schema
from ctloop.data._statistics import (
    ColumnStatistics,
    DatasetStatistics,
    NumericStatistics,
    compute_statistics,
    merge_statistics,
)

__all__ = [
    "Anomalies",
    "Anomaly",
    "ColumnDrift",
    "ColumnSchema",
    "ColumnStatistics",
    "ColumnTest",
    "DatasetStatistics",
    "DriftConfig",
    "DriftReport",
    "NumericStatistics",
    "Schema",
    "compute_statistics",
    "detect_drift",
    "infer_schema",
    "merge_statistics",
    "validate",
]
