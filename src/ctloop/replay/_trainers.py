"""How a replay trains a model: the user's pipeline, or a plain training function.

- A ctloop ``@pipeline`` taking ``train_start`` and ``train_end`` (ISO dates; it trains
  on ``[train_start, train_end)``, ``train_start`` None meaning the beginning) is run
  once per training window, as ``ctloop backtest`` runs it, and the last ``Model`` its run
  produced is the model (a recency-weighted window also gives it ``recency_half_life``,
  in days, when it takes that parameter);
- a plain function ``train(rows)`` (or ``train(rows, sample_weight=...)``) gets the
  labelled rows of the window and returns a ``Model`` or a fitted estimator, which is
  wrapped with :meth:`ctloop.artifacts.model.Model.from_estimator` on the rows' feature
  columns (all but the label and the time column).

Every prediction goes through ``Model.predict`` (the signature's checks and types), as
the prediction server's does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import ConfigError, CtloopError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.artifacts.model import Model
    from ctloop.store.workspace import Workspace

__all__ = ["TrainingWindow", "function_trainer", "pipeline_trainer", "trainer_for"]


@dataclass(frozen=True)
class TrainingWindow:
    """What one fit trains on: labelled rows of ``[start, end)`` (``start`` None: from
    the beginning), each weighted by ``half_life`` days of recency when set."""

    start: pd.Timestamp | None
    end: pd.Timestamp
    half_life_days: float | None = None


Trainer = Callable[["pd.DataFrame", TrainingWindow], "Model"]


def trainer_for(
    target: Any,
    *,
    label: str,
    time_column: str,
    workspace: Workspace | None = None,
    params: Mapping[str, Any] | None = None,
    reference: str | None = None,
) -> Trainer:
    """A trainer of ``target``: a ctloop pipeline (run in ``workspace``) or a function."""
    from ctloop.pipeline import Pipeline

    if isinstance(target, Pipeline):
        if workspace is None:
            raise ConfigError("replaying a pipeline needs a workspace to run it in")
        return pipeline_trainer(target, workspace=workspace, params=params, reference=reference)
    if callable(target):
        return function_trainer(target, label=label, time_column=time_column)
    raise ConfigError(
        f"--pipeline names a {type(target).__name__}, not a pipeline or a training function; "
        "name a @pipeline taking train_start and train_end, or a function train(rows)"
    )


def function_trainer(train: Callable[..., Any], *, label: str, time_column: str) -> Trainer:
    """A trainer calling ``train(rows)`` (see the module docstring)."""
    weighted = "sample_weight" in inspect.signature(train).parameters
    name = getattr(train, "__name__", repr(train))

    def fit(rows: pd.DataFrame, window: TrainingWindow) -> Model:
        from ctloop.artifacts.model import Model

        if window.half_life_days is not None and not weighted:
            raise ConfigError(
                f"training function {name!r} takes no sample_weight, so a recency-weighted "
                "window cannot weigh its rows; add a sample_weight parameter or use a "
                "sliding or expanding window"
            )
        kwargs: dict[str, Any] = {}
        if window.half_life_days is not None:
            kwargs["sample_weight"] = recency_weights(rows[time_column], window)
        try:
            found = train(rows, **kwargs)
        except CtloopError:
            raise
        except Exception as exc:  # user code: name the function and the window
            raise ConfigError(
                f"training function {name!r} failed on the rows before {window.end.date()}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(found, Model):
            return found
        features = rows.drop(columns=[c for c in (label, time_column) if c in rows.columns])
        return Model.from_estimator(found, features)

    return fit


def pipeline_trainer(
    pipeline_obj: Any,
    *,
    workspace: Workspace,
    params: Mapping[str, Any] | None = None,
    reference: str | None = None,
) -> Trainer:
    """A trainer running ``pipeline_obj`` per window (see the module docstring)."""
    accepted = inspect.signature(pipeline_obj.fn).parameters
    missing = [p for p in ("train_start", "train_end") if p not in accepted]
    if missing:
        raise ConfigError(
            f"pipeline '{pipeline_obj.name}' takes no parameter {', '.join(missing)}; a "
            "replay gives each training run train_start and train_end (ISO dates; it "
            "trains on [train_start, train_end))"
        )

    def fit(rows: pd.DataFrame, window: TrainingWindow) -> Model:
        from ctloop.pipeline._runner import run_pipeline

        values = {
            **dict(params or {}),
            "train_start": None if window.start is None else window.start.isoformat(),
            "train_end": window.end.isoformat(),
        }
        if window.half_life_days is not None:
            if "recency_half_life" not in accepted:
                raise ConfigError(
                    f"pipeline '{pipeline_obj.name}' takes no recency_half_life, so a "
                    "recency-weighted window cannot weigh its rows; add the parameter "
                    "(days) or use a sliding or expanding window"
                )
            values["recency_half_life"] = window.half_life_days
        result = run_pipeline(
            pipeline_obj, values, trigger="replay", reference=reference, workspace=workspace
        )
        return _last_model(result, pipeline_obj.name)

    return fit


def _last_model(result: Any, name: str) -> Model:
    from ctloop.artifacts.model import Model

    for step in reversed(list(result.outputs)):
        for output, record in result.outputs[step].items():
            if record.type == "Model":
                value = result.load(step, output)
                if isinstance(value, Model):
                    return value
    raise ConfigError(
        f"pipeline '{name}' produced no Model (run {result.run_id[:8]}); a replay scores "
        "the model its run trains, so the pipeline needs a fit step"
    )


def recency_weights(times: pd.Series, window: TrainingWindow) -> np.ndarray:
    """Each row's weight: 1 at the window's end, halving every ``half_life_days``.

    >>> import pandas as pd
    >>> w = TrainingWindow(None, pd.Timestamp("2013-01-15"), half_life_days=7.0)
    >>> recency_weights(pd.Series(pd.to_datetime(["2013-01-08", "2013-01-01"])), w).round(3)
    array([0.5 , 0.25])
    """
    import numpy as np

    age = (window.end - times).dt.total_seconds().to_numpy() / 86400.0
    return np.asarray(0.5 ** (age / float(window.half_life_days or 1.0)))


def load_training_target(reference: str) -> tuple[Any, str]:
    """The pipeline or training function named ``path/to/file.py:NAME`` (or
    ``package.module:NAME``), and its canonical reference."""
    from pathlib import Path

    from ctloop.pipeline import Pipeline
    from ctloop.pipeline._loading import (
        ModuleImportError,
        import_target,
        is_file_target,
        split_reference,
    )

    parts = split_reference(reference)
    if parts is None:
        raise ConfigError(
            f"--pipeline {reference!r} must look like path/to/file.py:NAME or package.module:NAME"
        )
    target, attr = parts
    if is_file_target(target) and not Path(target).exists():
        raise ConfigError(f"--pipeline {reference!r}: the file {target} does not exist")
    try:
        module, canonical = import_target(reference, target, attr)
    except ModuleImportError as exc:
        raise ConfigError(
            f"--pipeline {reference!r}: cannot import {target!r}: {exc.cause}"
        ) from exc.cause
    found = getattr(module, attr, None)
    if not isinstance(found, Pipeline) and not callable(found):
        names = sorted(
            k for k, v in vars(module).items() if isinstance(v, Pipeline) and not k.startswith("_")
        )
        raise ConfigError(
            f"--pipeline {reference!r}: {attr!r} is not a pipeline or a training function in "
            f"{target}; pipelines there: {', '.join(names) or '(none)'}"
        )
    return found, canonical
