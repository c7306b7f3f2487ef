"""Models as artifacts: flavors (scikit-learn, XGBoost, LightGBM, Python), signatures,
input examples, training statistics and requirements, never pickle unless trusted.

>>> from ctloop.artifacts.model import Model
>>> model = Model.from_estimator(fitted, X_train, training_statistics=stats)  # doctest: +SKIP
>>> model.predict([{"carrier": "UA", "hour": 7, ...}])  # doctest: +SKIP

Return a :class:`Model` from a step and it is stored as a ``Model`` artifact; load one
saved in a folder with :meth:`Model.load` (a registered version of a workspace with
:func:`ctloop.artifacts.model_versions.load_version`). :func:`predict_file` scores a
Parquet or CSV file of any size in bounded memory::

    predict_file(model, "flights.parquet", "preds.parquet", id_column="flight_id")
"""

from __future__ import annotations

from ctloop.artifacts.model._batch import (
    BatchResult,
    BatchSource,
    open_batch_source,
    predict_file,
)
from ctloop.artifacts.model._batch_frames import to_model_frame
from ctloop.artifacts.model._compat import check_requirements, version_notes
from ctloop.artifacts.model._flavors import (
    ModelFlavor,
    PythonModel,
    flavor_for,
    flavor_named,
    register_flavor,
)
from ctloop.artifacts.model._model import MODEL_FILE, TASKS, Model
from ctloop.artifacts.model._signature import ColumnSpec, Signature, infer_signature
from ctloop.artifacts.model._transform import Transform

__all__ = [
    "MODEL_FILE",
    "TASKS",
    "BatchResult",
    "BatchSource",
    "ColumnSpec",
    "Model",
    "ModelFlavor",
    "PythonModel",
    "Signature",
    "Transform",
    "check_requirements",
    "flavor_for",
    "flavor_named",
    "infer_signature",
    "open_batch_source",
    "predict_file",
    "register_flavor",
    "to_model_frame",
    "version_notes",
]
