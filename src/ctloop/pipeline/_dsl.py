"""The ``@step`` / ``@pipeline`` DSL.

Inside a pipeline function, calling a step does not run it: it records an invocation
in the pipeline's graph and returns handles to its future outputs. Outside a pipeline,
a step is its plain function, so it can be unit-tested directly.

>>> from ctloop import step, pipeline
>>> @step
... def double(x: int) -> int:
...     return 2 * x
>>> double(2)
4
>>> @pipeline
... def twice(x: int = 1):
...     double(double(x))
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

from ctloop.errors import ParameterError, PipelineDefinitionError
from ctloop.pipeline._params import coerce_file_paths

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

_builder: contextvars.ContextVar[GraphBuilder | None] = contextvars.ContextVar(
    "ctloop_graph_builder", default=None
)


class Step:
    """A function made into a pipeline step by :func:`step`."""

    __ctloop_step__ = True

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        cache: bool = True,
        outputs: tuple[str, ...] | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.cache = cache
        self.signature = inspect.signature(fn)
        self.output_names, self.multiple_outputs = _output_names(fn, outputs)
        functools.update_wrapper(self, fn)

    @functools.cached_property
    def code_hash(self) -> str:
        """Hash of the step's normalised code (see :mod:`ctloop.pipeline._hashing`)."""
        from ctloop.pipeline._hashing import code_hash

        return code_hash(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = _builder.get()
        if builder is None:
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def _output_names(
    fn: Callable[..., Any], outputs: tuple[str, ...] | None
) -> tuple[tuple[str, ...], bool]:
    if outputs is not None:
        if isinstance(outputs, str) or not outputs:
            raise PipelineDefinitionError(
                f"step '{fn.__name__}': outputs= must be a non-empty tuple of names"
            )
        return tuple(outputs), True
    try:
        ret = typing.get_type_hints(fn).get("return")
    except Exception:
        ret = None
    if isinstance(ret, type) and issubclass(ret, tuple) and hasattr(ret, "_fields"):
        return tuple(ret._fields), True
    if typing.get_origin(ret) is tuple:
        args = typing.get_args(ret)
        if args and args[-1] is not Ellipsis:
            return tuple(f"output_{i}" for i in range(len(args))), True
    return ("output",), False


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *, name: str | None = None, cache: bool = True, outputs: tuple[str, ...] | None = None
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    outputs: tuple[str, ...] | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step.

    ``cache=False`` always re-runs it; ``outputs=("train", "test")`` names several
    outputs (a ``tuple[...]`` or ``NamedTuple`` return annotation does it too).

    >>> @step(outputs=("train", "test"))
    ... def split(rows: list) -> tuple[list, list]:
    ...     return rows[:8], rows[8:]
    """
    if fn is not None:
        return Step(fn)
    return lambda f: Step(f, name=name, cache=cache, outputs=outputs)


@dataclass(frozen=True)
class OutputHandle:
    """A future output of a step invocation inside a pipeline definition."""

    invocation: str
    output: str

    def after(self, *others: OutputHandle | tuple[OutputHandle, ...]) -> OutputHandle:
        """Make this handle's step run after the steps of ``others`` (ordering only)."""
        builder = _builder.get()
        if builder is None:
            raise PipelineDefinitionError("`.after()` can only be used inside a @pipeline")
        builder.add_order(self.invocation, others)
        return self


@dataclass(frozen=True)
class DataInput:
    """A named data version used as a step input; see :func:`data_version`."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def data_version(name: str, version: int | None = None) -> DataInput:
    """Use a data version (``ctloop data add``) as a step input.

    The step receives a local ``Path`` to the snapshot's file or folder; lineage records
    which version the run used. ``version=None`` takes the latest at run start.

    >>> @pipeline
    ... def training():
    ...     model = train(data_version("flights"))  # doctest: +SKIP
    """
    if "@" in name and version is None:
        base, _, ver = name.partition("@")
        if not ver.isdigit():
            raise ParameterError(f"data version {name!r} must look like NAME or NAME@N")
        return DataInput(base, int(ver))
    return DataInput(name, version)


@dataclass
class Invocation:
    """One call of a step inside a pipeline definition."""

    id: str
    step: Step
    inputs: dict[str, OutputHandle | DataInput]
    params: dict[str, Any]
    after: set[str] = field(default_factory=set)

    def upstream(self) -> set[str]:
        """Ids of invocations this one must wait for."""
        ids = {h.invocation for h in self.inputs.values() if isinstance(h, OutputHandle)}
        return ids | self.after


class GraphBuilder:
    """Collects invocations while a pipeline function runs."""

    def __init__(self) -> None:
        self.invocations: dict[str, Invocation] = {}

    def add(self, step_obj: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            bound = step_obj.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PipelineDefinitionError(f"step '{step_obj.name}': {exc}") from exc
        bound.apply_defaults()
        inputs: dict[str, OutputHandle | DataInput] = {}
        params: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            if (
                isinstance(value, tuple)
                and value
                and all(isinstance(v, OutputHandle) for v in value)
            ):
                raise PipelineDefinitionError(
                    f"step '{step_obj.name}' got all outputs of a multi-output step as "
                    f"argument '{key}'; unpack them (`a, b = other(...)`) and pass one"
                )
            if isinstance(value, OutputHandle | DataInput):
                inputs[key] = value
            else:
                params[key] = value
        inv_id = self._unique_id(step_obj.name)
        params = coerce_file_paths(step_obj.fn, params)
        self.invocations[inv_id] = Invocation(inv_id, step_obj, inputs, params)
        handles = tuple(OutputHandle(inv_id, name) for name in step_obj.output_names)
        return handles if step_obj.multiple_outputs else handles[0]

    def add_order(self, inv_id: str, others: tuple[Any, ...]) -> None:
        for other in others:
            group = other if isinstance(other, tuple) else (other,)
            for handle in group:
                if not isinstance(handle, OutputHandle):
                    raise PipelineDefinitionError(
                        f"`.after()` takes step outputs, not {type(handle).__name__}"
                    )
                self.invocations[inv_id].after.add(handle.invocation)

    def _unique_id(self, name: str) -> str:
        if name not in self.invocations:
            return name
        n = 2
        while f"{name}_{n}" in self.invocations:
            n += 1
        return f"{name}_{n}"


class Pipeline:
    """A function made into a pipeline by :func:`pipeline`; call it to run it."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, executor: str | None = None
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.executor = executor
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def build(self, params: Mapping[str, Any] | None = None) -> PipelineGraph:
        """Run the pipeline function to collect its graph, with ``params`` bound."""
        bound = self.bind(params or {})
        builder = GraphBuilder()
        token = _builder.set(builder)
        try:
            self.fn(**bound)
        finally:
            _builder.reset(token)
        if not builder.invocations:
            raise PipelineDefinitionError(f"pipeline '{self.name}' calls no step")
        graph = PipelineGraph(self, bound, builder.invocations)
        graph.order()  # raises on cycles
        return graph

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check parameter names against the signature and apply defaults."""
        known = list(self.signature.parameters)
        unknown = [k for k in params if k not in known]
        if unknown:
            raise ParameterError(
                f"pipeline '{self.name}' has no parameter(s) {', '.join(map(repr, unknown))}; "
                f"its parameters are: {', '.join(known) or '(none)'}"
            )
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            raise ParameterError(f"pipeline '{self.name}': {exc}") from exc
        bound.apply_defaults()
        return coerce_file_paths(self.fn, dict(bound.arguments))

    @functools.cached_property
    def version(self) -> str:
        """Hash of the pipeline function's code (steps' code joins at run time)."""
        from ctloop.pipeline._hashing import code_hash

        return code_hash(self.fn)

    def run(
        self,
        *,
        executor: str | None = None,
        cache: bool = True,
        trigger: str = "manual",
        workspace: Workspace | None = None,
        **params: Any,
    ) -> Any:
        """Run the pipeline on ``workspace`` (default: the project's, from settings) and
        return a :class:`~ctloop.pipeline._runner.RunResult`.

        Raises :class:`~ctloop.errors.StepError` when a step's code raised (after the
        other branches finished), with ``run_id`` set for ``ctloop resume``.

        >>> train_flights.run(workspace=Workspace.open(), path="flights.parquet")  # doctest: +SKIP
        """
        from ctloop.pipeline._runner import run_pipeline

        return run_pipeline(
            self, params, executor=executor, cache=cache, trigger=trigger, workspace=workspace
        )

    def __call__(self, **params: Any) -> Any:
        if _builder.get() is not None:
            raise PipelineDefinitionError(
                f"pipeline '{self.name}' is called inside another pipeline; call its steps instead"
            )
        return self.run(**params)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, executor: str | None = None
) -> Any:
    """Make a function a pipeline: its body calls steps and wires outputs to inputs.

    >>> @pipeline(executor="process")
    ... def training(path: str = "flights.parquet", max_depth: int = 6): ...
    """
    if fn is not None:
        return Pipeline(fn)
    return lambda f: Pipeline(f, name=name, executor=executor)


class PipelineGraph:
    """The invocations of one pipeline with its parameters bound."""

    def __init__(
        self, pipeline_obj: Pipeline, params: dict[str, Any], invocations: dict[str, Invocation]
    ) -> None:
        self.pipeline = pipeline_obj
        self.params = params
        self.invocations = invocations

    def order(self) -> list[str]:
        """Invocation ids in a topological order; a cycle raises naming its steps."""
        from graphlib import CycleError, TopologicalSorter

        sorter: TopologicalSorter[str] = TopologicalSorter()
        for inv in self.invocations.values():
            sorter.add(inv.id, *sorted(inv.upstream()))
        try:
            return list(sorter.static_order())
        except CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise PipelineDefinitionError(
                f"pipeline '{self.pipeline.name}' has a cycle: {cycle}; remove one of "
                "the `.after()` orderings"
            ) from exc

    def downstream(self, inv_id: str) -> set[str]:
        """Every invocation that depends, directly or not, on ``inv_id``."""
        children: dict[str, set[str]] = {k: set() for k in self.invocations}
        for inv in self.invocations.values():
            for up in inv.upstream():
                children[up].add(inv.id)
        found: set[str] = set()
        stack = [inv_id]
        while stack:
            for child in children[stack.pop()]:
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def version(self) -> str:
        """Pipeline version: hash of the pipeline's and every step's code."""
        from ctloop.pipeline._hashing import sha256_text

        parts = [self.pipeline.version] + sorted(
            f"{i.id}:{i.step.code_hash}" for i in self.invocations.values()
        )
        return sha256_text("\n".join(parts))
