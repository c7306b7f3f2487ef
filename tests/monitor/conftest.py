"""Fixtures for monitoring: a fresh home, a registered model with its Evaluation, and
windows of logged predictions (with labels) written through the real prediction log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop import pipeline, step
from ctloop.artifacts.model import Model
from ctloop.config import Settings
from ctloop.evaluate import Evaluation
from ctloop.store.workspace import Workspace

END = datetime(2026, 3, 2, tzinfo=UTC)  # the end of the monitored day in the tests
FEATURES = ["signal", "weak", "carrier"]


def make_rows(n: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    """``signal`` decides the label, ``weak`` barely does; ``shift`` moves ``signal``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "signal": rng.normal(size=n) + shift,
            "weak": rng.normal(size=n),
            "carrier": rng.choice(["AA", "DL", "UA"], n),
        }
    )
    noise = rng.normal(scale=0.5, size=n)
    frame["label"] = (2.0 * (frame["signal"] - shift) + 0.3 * frame["weak"] + noise > 0).astype(int)
    return frame


@step(outputs=("model", "evaluation"))
def train_and_evaluate(rows: int) -> tuple[Model, Evaluation]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from ctloop.data import compute_statistics
    from ctloop.evaluate import evaluate_model

    train, test = make_rows(rows, 1), make_rows(1000, 2)
    columns = ColumnTransformer([("num", "passthrough", ["signal", "weak"])])
    estimator = make_pipeline(columns, LogisticRegression()).fit(train[FEATURES], train["label"])
    model = Model.from_estimator(
        estimator, train[FEATURES], training_statistics=compute_statistics(train[FEATURES])
    )
    evaluation = evaluate_model(
        estimator, test, label="label", features=FEATURES, attributions=True
    )
    return model, evaluation


@pipeline
def training(rows: int = 3000) -> None:
    train_and_evaluate(rows)


@dataclass
class Project:
    """A ctloop home with model ``flights`` version 1 as champion, and its workspace."""

    home: Path
    settings: Settings
    workspace: Workspace
    model: Model
    model_artifact_id: str
    evaluation: Evaluation

    def log(self, frame: pd.DataFrame, start: datetime, span: timedelta, *, labels: bool) -> None:
        """Log ``frame``'s rows as served predictions spread over ``[start, start+span)``
        and, with ``labels``, their labels as feedback."""
        from ctloop.serve._feedback import FeedbackLogger
        from ctloop.serve._prediction_log import PredictionLogger

        ids = [f"r{start.timestamp():.0f}-{i}" for i in range(len(frame))]
        predictions = self.model.predict(frame[FEATURES])
        chunks = np.array_split(np.arange(len(frame)), 10)
        with PredictionLogger(self.workspace, "flights", flush_rows=10**6) as logger:
            for k, index in enumerate(chunks):
                moment = start + span * (k + 0.5) / len(chunks)
                logger.log(
                    1,
                    "prod",
                    [ids[i] for i in index],
                    frame[FEATURES].iloc[index].reset_index(drop=True),
                    predictions[index],
                    moment.timestamp(),
                )
        if labels:
            with FeedbackLogger(self.workspace, "flights", flush_rows=10**6) as feedback:
                feedback.log(ids, frame["label"].tolist(), (start + span).timestamp())


@pytest.fixture
def project(home: Path) -> Project:
    result = training.run()
    model, evaluation = (
        result.load("train_and_evaluate", "model"),
        result.load("train_and_evaluate", "evaluation"),
    )
    artifact_id = result.outputs["train_and_evaluate"]["model"].id
    settings = Settings.load()
    workspace = Workspace.from_settings(settings)
    version = workspace.registry.register_version("flights", artifact_id, run_id=result.run_id)
    workspace.registry.set_alias("flights", "champion", version.version, reason="first")
    return Project(home, settings, workspace, model, artifact_id, evaluation)
