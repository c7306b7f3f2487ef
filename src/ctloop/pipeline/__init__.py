"""Pipelines: the ``@step`` / ``@pipeline`` DSL, cache keys, the runner and executors."""

from __future__ import annotations

from ctloop.pipeline._dsl import Pipeline, Step, data_version, pipeline, step
from ctloop.pipeline._params import FilePath
from ctloop.pipeline.tracking import log_metric, log_metrics, log_param, set_tag

__all__ = [
    "FilePath",
    "Pipeline",
    "Step",
    "data_version",
    "log_metric",
    "log_metrics",
    "log_param",
    "pipeline",
    "set_tag",
    "step",
]
