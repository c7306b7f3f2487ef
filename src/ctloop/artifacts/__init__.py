"""Typed artifacts: Python values saved as content-addressed files and loaded back.

>>> from ctloop.artifacts import save_value, load_value
>>> record = save_value({"auc": 0.91}, store, staging_root=tmp)  # doctest: +SKIP
>>> record.type, load_value(record, store, cache_dir=cache)  # doctest: +SKIP
('JSON', {'auc': 0.91})

Importing this package imports no data or ML library; each materializer imports
its library when it saves or loads a value.
"""

from __future__ import annotations

from ctloop.artifacts._io import artifact_available, load_value, save_value
from ctloop.artifacts._materializer import Materializer
from ctloop.artifacts._registry import materializer_for, register_materializer
from ctloop.artifacts._snapshot import checkout_snapshot, snapshot_path

__all__ = [
    "Materializer",
    "artifact_available",
    "checkout_snapshot",
    "load_value",
    "materializer_for",
    "register_materializer",
    "save_value",
    "snapshot_path",
]
