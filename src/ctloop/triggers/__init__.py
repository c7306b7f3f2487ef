"""Triggers and the scheduler: start pipeline runs on a schedule, on new data, on a
monitor's drift or degradation verdict, or on demand.

Triggers are declared per pipeline under ``pipelines:`` in ``ctloop.yaml`` (see
:mod:`ctloop.triggers._spec`); ``ctloop scheduler`` evaluates them. State lives in the
metadata store, so a restart neither misses nor repeats a firing.

>>> from ctloop.config import Settings
>>> specs = load_specs(Settings.load())  # doctest: +SKIP
>>> Scheduler(specs, Workspace.from_settings(Settings.load())).evaluate()  # doctest: +SKIP
[TriggerEvent(trigger='flights-training/nightly', outcome='baseline', ...)]
"""

from __future__ import annotations

import typing

from ctloop.triggers._scheduler import Scheduler, TriggerEvent
from ctloop.triggers._sources import Verdict, VerdictSource
from ctloop.triggers._spec import PipelineSpec, TriggerSpec, find_trigger, pipeline_specs

if typing.TYPE_CHECKING:
    from ctloop.config import Settings

__all__ = [
    "PipelineSpec",
    "Scheduler",
    "TriggerEvent",
    "TriggerSpec",
    "Verdict",
    "VerdictSource",
    "find_trigger",
    "load_specs",
    "pipeline_specs",
]


def load_specs(settings: Settings | None = None) -> list[PipelineSpec]:
    """The pipelines and triggers declared in ``ctloop.yaml`` (of the working directory)."""
    from ctloop.config import Settings

    return pipeline_specs((settings or Settings.load()).pipelines)
