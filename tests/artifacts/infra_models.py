"""Python models for the infra validation tests (imported by the probe process too, so
this module imports nothing but ctloop, numpy and pandas)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ctloop.artifacts.model import PythonModel


class ImportingModel(PythonModel):
    """Imports the module named in its state when it predicts (``""``: imports nothing)."""

    def __init__(self, module: str = "") -> None:
        self.module = module

    def predict(self, frame: Any) -> Any:
        if self.module:
            importlib.import_module(self.module)
        return np.zeros(len(frame))

    def save(self, directory: Path) -> None:
        (directory / "module.txt").write_text(self.module)

    @classmethod
    def load(cls, files: Mapping[str, Path]) -> ImportingModel:
        return cls(files["module.txt"].read_text())


class BrokenModel(ImportingModel):
    """Loads, but raises when it predicts."""

    def predict(self, frame: Any) -> Any:
        raise ValueError("column 'x' has negative values the model cannot score")


class SlowModel(ImportingModel):
    """Takes a minute to load."""

    @classmethod
    def load(cls, files: Mapping[str, Path]) -> SlowModel:
        time.sleep(60)
        return cls()
