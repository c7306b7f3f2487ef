"""ctloop: continuous training and delivery of machine-learning models.

>>> import pandas as pd
>>> from ctloop import step, pipeline
>>> @step
... def load(path: str) -> pd.DataFrame:
...     return pd.read_parquet(path)
>>> @pipeline
... def training(path: str = "flights.parquet"):
...     load(path)

Heavy libraries are imported where they are used, so ``import ctloop`` stays cheap.
"""

from __future__ import annotations

import sys as _sys
import typing as _typing
from types import ModuleType as _ModuleType

from ctloop._version import __version__
from ctloop.errors import CtloopError, StepError

if _typing.TYPE_CHECKING:
    from ctloop.artifacts._materializer import Materializer
    from ctloop.pipeline._checkpoints import checkpoint
    from ctloop.pipeline._dsl import data_version, pipeline, step
    from ctloop.pipeline._params import FilePath
    from ctloop.pipeline._runner import RunResult
    from ctloop.pipeline.tracking import log_metric, log_metrics, log_param, set_tag
    from ctloop.store.workspace import Workspace

# Every public name loads on first use: `import ctloop.serve._app` must not load the
# pipeline engine, and `ctloop --help` stays fast.
_LAZY = {
    "Materializer": "ctloop.artifacts._materializer",
    "checkpoint": "ctloop.pipeline._checkpoints",
    "data_version": "ctloop.pipeline._dsl",
    "pipeline": "ctloop.pipeline._dsl",
    "step": "ctloop.pipeline._dsl",
    "FilePath": "ctloop.pipeline._params",
    "log_metric": "ctloop.pipeline.tracking",
    "log_metrics": "ctloop.pipeline.tracking",
    "log_param": "ctloop.pipeline.tracking",
    "set_tag": "ctloop.pipeline.tracking",
}


class _Package(_ModuleType):
    """``ctloop`` itself: ``ctloop.pipeline`` is the decorator, so the import system's
    binding of the subpackage of that name as an attribute is skipped (the subpackage
    stays importable as ``ctloop.pipeline.*`` through ``sys.modules``)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name == "pipeline" and isinstance(value, _ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

__all__ = [
    "CtloopError",
    "FilePath",
    "Materializer",
    "StepError",
    "__version__",
    "checkpoint",
    "data_version",
    "log_metric",
    "log_metrics",
    "log_param",
    "pipeline",
    "register_materializer",
    "resume",
    "set_tag",
    "step",
]


def register_materializer(materializer: Materializer, *, first: bool = True) -> None:
    """Teach ctloop to store a new type; see :class:`ctloop.Materializer`."""
    from ctloop.artifacts._registry import register_materializer as _register

    _register(materializer, first=first)


def resume(
    run_id: str, *, executor: str | None = None, workspace: Workspace | None = None
) -> RunResult:
    """Continue a failed or interrupted run of ``workspace`` (default: the project's, from
    settings), like ``ctloop resume RUN``: only what did not succeed runs again.

    >>> ctloop.resume("3f2a9c1e", workspace=Workspace.open())  # doctest: +SKIP
    """
    from ctloop.pipeline._runner import resume_run

    return resume_run(run_id, executor=executor, workspace=workspace)


def __getattr__(name: str) -> _typing.Any:
    # the public names load on first use, so `import ctloop` and `ctloop --help` stay fast;
    # subpackages are reached here too (`ctloop.store` after `import ctloop.store.metadata`),
    # since the attributes the imports above set for them are removed below
    import importlib

    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'ctloop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def _forget_helpers() -> None:
    """Leave only the public API in ``vars(ctloop)``: the ``annotations`` feature name and
    the subpackages that the imports above bound as attributes (reached through
    ``__getattr__`` instead)."""
    namespace = globals()
    for name, value in list(namespace.items()):
        if name == "annotations" or (isinstance(value, _ModuleType) and name[0] != "_"):
            del namespace[name]
    del namespace["_sys"]


_forget_helpers()
del _forget_helpers
