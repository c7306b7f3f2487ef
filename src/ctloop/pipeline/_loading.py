"""Finding a pipeline from a reference: ``path/to/file.py:name`` or ``package.module:name``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ctloop._moved import current_module
from ctloop.errors import PipelineDefinitionError
from ctloop.pipeline._dsl import Pipeline
from ctloop.pipeline._hashing import sha256_text


def module_name_for(path: Path) -> str:
    """A stable module name for a pipeline file (the same in every worker process)."""
    resolved = path.resolve()
    return f"ctloop_user_{resolved.stem}_{sha256_text(str(resolved))[:10]}"


def load_module_from_file(path: Path, module_name: str | None = None) -> ModuleType:
    """Import a Python file as a module (its folder joins ``sys.path`` like a script's)."""
    resolved = path.resolve()
    name = module_name or module_name_for(resolved)
    if name in sys.modules:
        return sys.modules[name]
    if not resolved.is_file():
        raise PipelineDefinitionError(f"pipeline file {str(path)!r} does not exist")
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise PipelineDefinitionError(f"{str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


class ModuleImportError(PipelineDefinitionError):
    """The module a ``package.module:NAME`` reference names cannot be imported."""

    def __init__(self, target: str, cause: ImportError) -> None:
        super().__init__(f"cannot import module {target!r}: {cause}")
        self.target = target
        self.cause = cause


def split_reference(reference: str) -> tuple[str, str] | None:
    """``(target, NAME)`` of a ``path/to/file.py:NAME`` or ``package.module:NAME``
    reference, or None when it has no target or no name."""
    target, sep, attr = reference.rpartition(":")
    if not sep or not target or not attr:
        return None
    return target, attr


def is_file_target(target: str) -> bool:
    """Whether a reference's target is a Python file rather than a module name."""
    return target.endswith(".py") or "/" in target


def import_target(reference: str, target: str, attr: str) -> tuple[ModuleType, str]:
    """The module a reference's target names (a file or an importable module) and the
    canonical reference (a file's is absolute).

    Raises:
        ModuleImportError: the module name cannot be imported.
    """
    if is_file_target(target):
        return load_module_from_file(Path(target)), f"{Path(target).resolve()}:{attr}"
    try:
        module = importlib.import_module(current_module(target))
    except ImportError as exc:
        raise ModuleImportError(target, exc) from exc
    return module, reference


def load_pipeline(reference: str) -> tuple[Pipeline, str]:
    """The pipeline named by ``reference`` and its canonical reference (absolute file)."""
    parts = split_reference(reference)
    if parts is None:
        raise PipelineDefinitionError(
            f"pipeline reference {reference!r} must look like path/to/file.py:NAME or "
            "package.module:NAME"
        )
    target, attr = parts
    module, canonical = import_target(reference, target, attr)
    obj = getattr(module, attr, None)
    if not isinstance(obj, Pipeline):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
        what = "is not a @pipeline" if obj is not None else "does not exist"
        raise PipelineDefinitionError(
            f"{attr!r} in {target} {what}; pipelines there: {', '.join(found) or '(none)'}"
        )
    return obj, canonical


def reference_of(pipeline_obj: Pipeline) -> str:
    """The reference to store on a run so that ``ctloop resume`` can find the pipeline."""
    module = sys.modules.get(pipeline_obj.fn.__module__)
    file = getattr(module, "__file__", None)
    if (
        pipeline_obj.fn.__module__.startswith("ctloop_user_")
        or pipeline_obj.fn.__module__ == "__main__"
    ) and file:
        return f"{Path(file).resolve()}:{pipeline_obj.fn.__qualname__}"
    return f"{pipeline_obj.fn.__module__}:{pipeline_obj.fn.__qualname__}"
