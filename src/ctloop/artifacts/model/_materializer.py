"""Stores a :class:`~ctloop.artifacts.model.Model` as a ``Model`` artifact."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctloop.artifacts._materializer import Materializer

__all__ = ["ModelMaterializer"]


class ModelMaterializer(Materializer):
    """A model's folder (``model.json``, ``estimator/``, example, statistics) as one
    artifact. Properties: flavor, task, input columns, requirements.

    A pickled model loads only when ``CTLOOP_TRUST_PICKLE=1`` is set in the loading
    process; every other flavor loads without running stored code."""

    name = "ctloop.model"
    artifact_type = "Model"
    handles = ("ctloop.artifacts.model._model.Model",)

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Write the model's folder."""
        description = value.save(directory)
        return {
            "flavor": description["flavor"],
            "task": description["task"],
            "inputs": value.signature.input_names,
            "requirements": description["requirements"],
            **(
                {"transform": description["transform"]["class"]}
                if "transform" in description
                else {}
            ),
        }

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read the model back, checking its requirements first."""
        from ctloop.artifacts.model._model import Model

        return Model.from_files(files, trusted=os.environ.get("CTLOOP_TRUST_PICKLE") == "1")
