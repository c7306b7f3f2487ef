"""A canary whose transform or model fails on request, beside a healthy primary.

A row's ``fail`` field picks the canary's fault: ``preprocess`` or ``postprocess`` (its
transform raises), ``refuse`` (its transform refuses the input, which the primary
accepts); an ``x`` above 100 makes its model raise. The primary
(``_transforms.Renaming``) ignores ``fail``. Importable as ``tests.serve._canaries`` by a
server started with the repository on ``PYTHONPATH``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ctloop.artifacts.model import Model
from ctloop.errors import TransformInputError
from tests.serve import _models, _transforms


class Flaky(_transforms.Renaming):
    """:class:`~tests.serve._transforms.Renaming` that fails as each row's ``fail`` asks."""

    def preprocess(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        faults = {record.get("fail") for record in records}
        if "preprocess" in faults:
            raise RuntimeError("the canary's preprocess is broken")
        if "refuse" in faults:
            raise TransformInputError("the canary refuses 'fail'", field="fail")
        return super().preprocess(records)

    def postprocess(self, predictions: np.ndarray, records: list[dict[str, Any]]) -> dict[str, Any]:
        if any(record.get("fail") == "postprocess" for record in records):
            raise RuntimeError("the canary's postprocess is broken")
        return super().postprocess(predictions, records)


class BreaksOnLargeX(_models.Constant):
    """Predicts a constant; raises for any ``x`` above 100."""

    def predict(self, frame: Any) -> Any:
        if (frame["x"] > 100).any():
            raise RuntimeError("the canary's model is broken")
        return super().predict(frame)


CANARY_VALUE = 0.75
"""What the canary predicts when it does not fail."""


def canary() -> Model:
    """A constant model behind :class:`Flaky` (cut 0.4, like the primary)."""
    frame, _ = _models.training_frame(20)
    return Model.from_estimator(BreaksOnLargeX(CANARY_VALUE), frame, transform=Flaky(0.4))
