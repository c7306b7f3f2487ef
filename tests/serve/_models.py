"""Models for the serving tests: small sklearn models on a generated table, and a model
whose code raises (a broken canary)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctloop.artifacts import save_value
from ctloop.artifacts.model import Model, PythonModel
from ctloop.store.workspace import Workspace


def training_frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Columns x (float), n (integer), color (string), flag (boolean); a known label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows),
            "n": rng.integers(0, 10, rows).astype("int64"),
            "color": rng.choice(["red", "green", "blue"], rows).astype(object),
            "flag": rng.random(rows) < 0.5,
        }
    )
    label = ((frame.x + 0.2 * frame.n + (frame.color == "red") * 1.0) > 1).astype(int)
    return frame, label.to_numpy()


@functools.lru_cache(maxsize=4)
def classifier(c: float = 1.0) -> Model:
    """A logistic regression (one-hot colour) as a ctloop Model (trained once per ``c``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame, label = training_frame()
    encode = ColumnTransformer(
        [("color", OneHotEncoder(handle_unknown="ignore"), ["color"])], remainder="passthrough"
    )
    estimator = Pipeline([("encode", encode), ("fit", LogisticRegression(C=c, max_iter=500))])
    estimator.fit(frame, label)
    return Model.from_estimator(estimator, frame)


class Constant(PythonModel):
    """Predicts one constant (tells versions apart in routing tests)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, frame: Any) -> Any:
        return np.full(len(frame), self.value)

    def save(self, directory: Path) -> None:
        (directory / "value.txt").write_text(repr(self.value))

    @classmethod
    def load(cls, files: Mapping[str, Path]) -> PythonModel:
        return cls(float(files["value.txt"].read_text()))


class Broken(Constant):
    """A model that raises on every prediction."""

    def predict(self, frame: Any) -> Any:
        raise RuntimeError("this model is broken")


def constant(value: float, broken: bool = False) -> Model:
    """A constant (or broken) model with the training frame's signature."""
    frame, _ = training_frame(20)
    return Model.from_estimator((Broken if broken else Constant)(value), frame)


def register(workspace: Workspace, name: str, model: Model, tmp: Path) -> int:
    """Save ``model`` as an artifact and register it as the next version of ``name``."""
    record = save_value(model, workspace.artifacts, staging_root=tmp / "staging")
    workspace.metadata.put_artifacts([record])
    return workspace.registry.register_version(name, record.id).version


def set_alias(workspace: Workspace, name: str, alias: str, version: int) -> None:
    """Point ``name@alias`` at ``version``."""
    workspace.registry.set_alias(name, alias, version, reason="test")
