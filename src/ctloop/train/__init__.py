"""Training: fit an estimator into a ``Model``, tune its parameters, checkpoint long fits.

Pure functions over DataFrames and estimators; they never touch the stores. The pipeline
binds them in :mod:`ctloop.components.training`.

>>> from sklearn.linear_model import LogisticRegression
>>> from ctloop.train import SearchSpace, fit, tune
>>> result = fit(LogisticRegression(), frame, label="late")  # doctest: +SKIP
>>> result.model.signature.input_names, result.metrics["auc"]  # doctest: +SKIP
>>> space = SearchSpace.parse({"C": {"float": [0.01, 10], "log": True}})
>>> space.names
('C',)
>>> tune(LogisticRegression(), train, valid, "late", space, n_trials=40, n_jobs=4,
...      parallel="processes")  # doctest: +SKIP
"""

from __future__ import annotations

from ctloop.train._checkpointing import (
    Checkpoint,
    CheckpointStore,
    MemoryCheckpoints,
    lightgbm_checkpoint_callback,
    xgboost_checkpoint_callback,
)
from ctloop.train._fitting import FitResult, fit
from ctloop.train._space import Parameter, SearchSpace
from ctloop.train._tuning import Trial, TrialPruned, TrialReporter, TuneResult, optimize, tune

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "FitResult",
    "MemoryCheckpoints",
    "Parameter",
    "SearchSpace",
    "Trial",
    "TrialPruned",
    "TrialReporter",
    "TuneResult",
    "fit",
    "lightgbm_checkpoint_callback",
    "optimize",
    "tune",
    "xgboost_checkpoint_callback",
]
