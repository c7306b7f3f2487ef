"""Search spaces for tuning, declared in Python or YAML.

Each parameter is a mapping with exactly one kind:

- ``{"int": [low, high]}``: an integer in ``[low, high]``; ``step`` and ``log`` optional;
- ``{"float": [low, high]}``: a float in ``[low, high]``; ``log: true`` samples on a log
  scale (learning rates, regularisation), ``step`` optional;
- ``{"choice": [a, b, ...]}``: one of the listed values (strings, numbers, booleans, null).

A plain value (``subsample: 0.8``) is fixed: every trial gets it.

>>> space = SearchSpace.parse('''
... max_depth: {int: [2, 10]}
... learning_rate: {float: [0.01, 0.3], log: true}
... loss: {choice: [log_loss, exponential]}
... ''')
>>> space.names
('max_depth', 'learning_rate', 'loss')
>>> space.contains({"max_depth": 3, "learning_rate": 0.1, "loss": "log_loss"})
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctloop.errors import SearchSpaceError

_KINDS = ("int", "float", "choice")
_OPTIONS = {"log", "step"}
_EXAMPLE = "e.g. {int: [2, 10]}, {float: [0.01, 0.3], log: true} or {choice: [a, b]}"


@dataclass(frozen=True)
class Parameter:
    """One dimension of a search space (see the module docstring for the syntax)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def sample(self, trial: Any) -> Any:
        """A value suggested by an Optuna ``trial``."""
        if self.kind == "int":
            low, high = int(self.low or 0), int(self.high or 0)
            return trial.suggest_int(self.name, low, high, step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        return self.choices[0]  # fixed

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this dimension."""
        if self.kind in ("choice", "fixed"):
            return value in self.choices
        if self.kind == "int" and not float(value).is_integer():
            return False
        assert self.low is not None and self.high is not None
        return self.low <= float(value) <= self.high

    def to_dict(self) -> Any:
        """The declaration this parameter was parsed from."""
        if self.kind == "fixed":
            return self.choices[0]
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        out: dict[str, Any] = {self.kind: [self.low, self.high]}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    """The parameters a tuning study searches over.

    >>> SearchSpace.parse({"C": {"float": [0.1, 10.0], "log": True}}).parameters[0].log
    True
    """

    parameters: tuple[Parameter, ...]

    @classmethod
    def parse(cls, source: SearchSpace | Mapping[str, Any] | str | Path) -> SearchSpace:
        """A space from a dict, YAML text, or a ``.yaml`` file path."""
        if isinstance(source, SearchSpace):
            return source
        if isinstance(source, Path) or (
            isinstance(source, str) and source.endswith((".yaml", ".yml")) and "\n" not in source
        ):
            source = _read_file(Path(source))
        if isinstance(source, str):
            source = _parse_yaml(source, "the search space text")
        if not isinstance(source, Mapping) or not source:
            raise SearchSpaceError(
                f"a search space must be a non-empty mapping of parameter names to ranges, "
                f"not {type(source).__name__}; {_EXAMPLE}"
            )
        return cls(tuple(_parameter(str(name), spec) for name, spec in source.items()))

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names, in declaration order."""
        return tuple(p.name for p in self.parameters)

    def sample(self, trial: Any) -> dict[str, Any]:
        """One value per parameter, suggested by an Optuna ``trial``."""
        return {p.name: p.sample(trial) for p in self.parameters}

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` names every parameter with a value inside its range."""
        return set(params) == set(self.names) and all(
            p.contains(params[p.name]) for p in self.parameters
        )

    def to_dict(self) -> dict[str, Any]:
        """The declaration (``SearchSpace.parse`` reads it back)."""
        return {p.name: p.to_dict() for p in self.parameters}


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SearchSpaceError(
            f"search space file {str(path)!r} cannot be read ({exc.strerror}); check the path"
        ) from exc
    return _parse_yaml(text, f"search space file {str(path)!r}")


def _parse_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SearchSpaceError(f"{where} is not valid YAML: {exc}") from exc


def _parameter(name: str, spec: Any) -> Parameter:
    if not isinstance(spec, Mapping):
        if isinstance(spec, list | tuple | set):
            raise SearchSpaceError(
                f"search space parameter {name!r} is a bare list {list(spec)!r}; write "
                f"{{choice: {list(spec)!r}}} for a choice or {{int: [low, high]}} for a range",
                parameter=name,
            )
        return Parameter(name, "fixed", choices=(spec,))
    kinds = [k for k in spec if k in _KINDS]
    unknown = set(spec) - set(_KINDS) - _OPTIONS
    if len(kinds) != 1 or unknown:
        got = ", ".join(map(str, spec)) or "nothing"
        raise SearchSpaceError(
            f"search space parameter {name!r} has keys {got}; give exactly one of "
            f"int, float, choice (plus log/step for ranges), {_EXAMPLE}",
            parameter=name,
        )
    kind = kinds[0]
    if kind == "choice":
        return _choice(name, spec)
    return _range(name, kind, spec)


def _choice(name: str, spec: Mapping[str, Any]) -> Parameter:
    choices = spec["choice"]
    if set(spec) != {"choice"}:
        raise SearchSpaceError(
            f"search space parameter {name!r} is a choice, which takes no log or step; remove them",
            parameter=name,
        )
    if not isinstance(choices, list | tuple) or not choices:
        raise SearchSpaceError(
            f"search space parameter {name!r} has choice {choices!r}; give a non-empty "
            f"list of values, e.g. {{choice: [gini, entropy]}}",
            parameter=name,
        )
    for value in choices:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise SearchSpaceError(
                f"search space parameter {name!r} offers the choice {value!r} "
                f"({type(value).__name__}); choices must be strings, numbers, booleans or null",
                parameter=name,
            )
    return Parameter(name, "choice", choices=tuple(choices))


def _range(name: str, kind: str, spec: Mapping[str, Any]) -> Parameter:
    bounds = spec[kind]
    if not (isinstance(bounds, list | tuple) and len(bounds) == 2 and all(map(_is_number, bounds))):
        raise SearchSpaceError(
            f"search space parameter {name!r} has {kind} bounds {bounds!r}; give two "
            f"numbers [low, high], e.g. {{{kind}: [1, 10]}}",
            parameter=name,
        )
    low, high = float(bounds[0]), float(bounds[1])
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise SearchSpaceError(
            f"search space parameter {name!r} is an int with bounds {bounds!r}; use whole "
            f"numbers or declare it as {{float: {list(bounds)!r}}}",
            parameter=name,
        )
    if low > high:
        raise SearchSpaceError(
            f"search space parameter {name!r} has bounds [{bounds[0]}, {bounds[1]}]: the low "
            f"bound is above the high one; write [{bounds[1]}, {bounds[0]}]",
            parameter=name,
        )
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise SearchSpaceError(
            f"search space parameter {name!r} samples on a log scale from {bounds[0]}; a log "
            f"scale needs a low bound above 0, e.g. [0.001, {bounds[1]}]",
            parameter=name,
        )
    step = spec.get("step")
    if step is not None and (not _is_number(step) or step <= 0 or log):
        raise SearchSpaceError(
            f"search space parameter {name!r} has step {step!r}; a step must be a positive "
            f"number and cannot be combined with log: true",
            parameter=name,
        )
    return Parameter(name, kind, low, high, log, None if step is None else float(step))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
