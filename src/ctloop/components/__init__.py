"""The standard steps: thin bindings of ctloop's domain functions to the pipeline DSL.

Data (``statistics``, ``infer_schema``, ``validate``, ``detect_drift``), training
(``fit``, ``tune``), features (``historical_features``), evaluation (``evaluate``, ``gate``), the registry
(``champion_model``, ``register``, ``promote``, ``release``) and batch scoring
(``batch_predict``). Steps that read or write state use the run's workspace
(:func:`ctloop.pipeline.tracking.current_workspace`).

>>> from ctloop import pipeline
>>> from ctloop.components import infer_schema, statistics, validate
>>> @pipeline
... def check(path: str = "flights.parquet"):
...     data = load(path)  # doctest: +SKIP
...     validate(data, schema_path="schema.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from ctloop.components._batch import batch_predict
from ctloop.components._data_validation import detect_drift, infer_schema, statistics, validate
from ctloop.components._evaluation import evaluate, gate
from ctloop.components._features import historical_features
from ctloop.components._registry import (
    RegisteredVersion,
    champion_model,
    promote,
    register,
    release,
)
from ctloop.components.training import fit, tune

__all__ = [
    "RegisteredVersion",
    "batch_predict",
    "champion_model",
    "detect_drift",
    "evaluate",
    "fit",
    "gate",
    "historical_features",
    "infer_schema",
    "promote",
    "register",
    "release",
    "statistics",
    "tune",
    "validate",
]
