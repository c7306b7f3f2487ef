"""Transforms for the tests: raw request fields renamed and cleaned into the columns of
``tests.serve._models``' training frame, and answers with a label beside the probability.

Importable as ``tests.serve._transforms`` (a server started with ``PYTHONPATH`` at the
repository root loads it by reference, as a user's package would be). It imports only
ctloop, numpy and pandas at the top, so a bundle that carries this one file serves it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctloop.artifacts.model import Model, Transform
from ctloop.errors import TransformInputError

_FLAGS = {"yes": True, "no": False}


class Renaming(Transform):
    """Fields ``x``, ``count``, ``colour`` (any case) and ``flag`` (``"yes"``/``"no"``)
    become the model's ``x``, ``n``, ``color``, ``flag``; the answer is the probability
    and ``late``, whether it passes ``cut`` (the transform's state, kept in a file).

    It checks ``colour`` (a 4xx naming it) and looks ``flag`` up (a word it does not know
    is a 4xx too), but converts ``x`` with ``float`` unchecked: text there is a
    ``ValueError`` of its code, a bug (a 5xx)."""

    def __init__(self, cut: float = 0.5) -> None:
        self.cut = cut

    def preprocess(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        for i, record in enumerate(records):
            if not isinstance(record["colour"], str):
                raise TransformInputError(
                    f"row {i}: 'colour' must be a colour name, not {record['colour']!r}",
                    field="colour",
                )
        return pd.DataFrame(
            {
                "x": [float(r["x"]) for r in records],
                "n": [r["count"] for r in records],
                "color": [r["colour"].lower() for r in records],
                "flag": [_FLAGS[r["flag"]] for r in records],
            }
        )

    def postprocess(self, predictions: np.ndarray, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"probability": predictions, "late": predictions > self.cut}

    def save(self, directory: Path) -> None:
        (directory / "cut.txt").write_text(repr(self.cut))

    @classmethod
    def load(cls, files: Mapping[str, Path]) -> Transform:
        return cls(float(files["cut.txt"].read_text()))


class BrokenAnswer(Renaming):
    """Prepares like :class:`Renaming`; its postprocess has a bug."""

    def postprocess(self, predictions: np.ndarray, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"probability": predictions, "late": predictions[:1]}


RAW = [
    {"x": 0.5, "count": 3, "colour": "RED", "flag": "yes"},
    {"x": -1.0, "count": 0, "colour": "Blue", "flag": "no"},
    {"x": 2.0, "count": 7, "colour": "green", "flag": "yes"},
]
"""Raw rows as a client sends them."""

PREPARED = pd.DataFrame(
    {
        "x": [0.5, -1.0, 2.0],
        "n": [3, 0, 7],
        "color": ["red", "blue", "green"],
        "flag": [True, False, True],
    }
)
"""What :class:`Renaming` makes of :data:`RAW`."""


def transformed(transform: Transform | None = None) -> Model:
    """``_models.classifier()``'s estimator with ``transform`` (default ``Renaming(0.4)``)."""
    from tests.serve import _models

    frame, _ = _models.training_frame()
    estimator = _models.classifier().estimator
    return Model.from_estimator(estimator, frame, transform=transform or Renaming(0.4))


def expected() -> dict[str, list[Any]]:
    """The probability and label of each row of :data:`RAW`, computed without a transform."""
    from tests.serve import _models

    probability = _models.classifier().predict(PREPARED)
    return {"probability": probability.tolist(), "late": (probability > 0.4).tolist()}
