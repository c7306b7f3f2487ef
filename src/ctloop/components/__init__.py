"""The standard steps: thin bindings of ctloop's domain functions to the pipeline DSL.

>>> from ctloop import pipeline
>>> from ctloop.components import infer_schema, statistics, validate
>>> @pipeline
... def check(path: str = "flights.parquet"):
...     data = load(path)  # doctest: +SKIP
...     validate(data, schema_path="schema.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from ctloop.components.data_validation import detect_drift, infer_schema, statistics, validate
from ctloop.components.evaluation import evaluate, gate
from ctloop.components.training import fit, tune

__all__ = [
    "detect_drift",
    "evaluate",
    "fit",
    "gate",
    "infer_schema",
    "statistics",
    "tune",
    "validate",
]
