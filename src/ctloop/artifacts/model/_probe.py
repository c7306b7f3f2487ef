"""Load a saved model and predict on its input example, seeing only what it declares.

Run by :func:`ctloop.artifacts.model.infra.check_model_in_subprocess` as
``python -I -m ctloop.artifacts.model._probe MODEL_DIR`` (``-I``: no ``PYTHONPATH``, no user
site). Before the model is touched, an import hook refuses every top-level module that
belongs to an installed distribution outside the *allowed closure*: the distributions
the model's ``requirements`` name, what they require in turn (``importlib.metadata``),
and what ctloop needs to load any model (:data:`LOADING_NEEDS`). Modules of the standard
library and of plain folders on ``sys.path`` (project code) are never refused.

The last line on stdout is one JSON object: ``passed``, ``stage`` (``requirements``,
``load`` or ``predict``), ``reason`` and ``refused`` (the modules refused on the way). The
exit status is 0 when the model loaded and predicted, else 1.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.metadata
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

LOADING_NEEDS = ("ctloop", "orjson", "numpy", "pandas")
"""Distributions a process needs to load any ctloop model (ctloop itself, not its full
dependency list: a model must not pass because ctloop happens to depend on a library)."""

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class UndeclaredImportError(ModuleNotFoundError):
    """An import of a module whose distribution the model does not declare."""


def normalize(name: str) -> str:
    """A distribution name in its canonical form (PEP 503).

    >>> normalize("Scikit_Learn")
    'scikit-learn'
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def allowed_closure(requirements: Iterable[str]) -> set[str]:
    """The normalised names of ``requirements``, :data:`LOADING_NEEDS` and everything they
    require (extras and markers that do not hold here are left out)."""
    seen: set[str] = set()
    stack = [normalize(n) for n in (*requirements, *LOADING_NEEDS)]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name == "ctloop":
            continue  # ctloop's own dependencies are not the model's: see LOADING_NEEDS
        stack.extend(_dependencies(name))
    return seen


def _dependencies(name: str) -> list[str]:
    try:
        declared = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    found = []
    for line in declared:
        requirement, _, marker = line.partition(";")
        match = _NAME.match(requirement)
        if match and _marker_holds(marker):
            found.append(normalize(match[1]))
    return found


def _marker_holds(marker: str) -> bool:
    marker = marker.strip()
    if not marker:
        return True
    if "extra" in marker:
        return False  # an extra the model did not ask for
    try:
        from packaging.markers import Marker
    except ImportError:  # without packaging, allow rather than refuse a needed package
        return True
    return bool(Marker(marker).evaluate())


def refused_modules(allowed: set[str]) -> dict[str, str]:
    """Top-level module → distribution, for every installed module outside ``allowed``."""
    refused = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        names = {normalize(d) for d in dists}
        if names and not names & allowed and module not in sys.builtin_module_names:
            refused[module] = sorted(names)[0]
    return refused


class RefusingFinder(importlib.abc.MetaPathFinder):
    """Refuses the top-level modules in ``refused`` and remembers what it refused."""

    def __init__(self, refused: dict[str, str]) -> None:
        self.refused = refused
        self.seen: dict[str, str] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> None:
        """Raise for a refused module; ``None`` lets the other finders look."""
        top = fullname.partition(".")[0]
        if top in self.refused:
            self.seen.setdefault(top, self.refused[top])
            raise UndeclaredImportError(describe_refusal(top, self.refused[top]), name=top)
        return None


def describe_refusal(module: str, distribution: str) -> str:
    """The sentence for a refused import.

    >>> describe_refusal("lightgbm", "lightgbm")
    "the model imports lightgbm, which its requirements do not declare (distribution 'lightgbm'); add it to requirements= of Model.from_estimator"
    """
    return (
        f"the model imports {module}, which its requirements do not declare (distribution "
        f"{distribution!r}); add it to requirements= of Model.from_estimator"
    )


def probe(directory: Path, *, trusted: bool) -> dict[str, Any]:
    """Load the model in ``directory`` with the import hook on and predict its example."""
    description = json.loads((directory / "model.json").read_text())
    requirements = description.get("requirements", {})
    finder = RefusingFinder(refused_modules(allowed_closure(requirements)))
    sys.meta_path.insert(0, finder)
    stage = "requirements"
    try:
        from ctloop.artifacts.model._compat import check_requirements
        from ctloop.artifacts.model._model import Model

        check_requirements(requirements)
        stage = "load"
        model = Model.load(directory, trusted=trusted)
        stage = "predict"
        if not model.input_example:
            raise ValueError("the model has no input example to predict on")
        model.predict(model.input_example)
    except BaseException as exc:
        return _failed(stage, exc, finder)
    return {"passed": True, "stage": "predict", "reason": "", "refused": sorted(finder.seen)}


def _failed(stage: str, exc: BaseException, finder: RefusingFinder) -> dict[str, Any]:
    cause = _refusal_in(exc)
    reason = str(cause) if cause is not None else f"{type(exc).__name__}: {exc}"
    if cause is None and finder.seen:
        reason += f" (imports refused on the way: {', '.join(sorted(finder.seen))})"
    return {"passed": False, "stage": stage, "reason": reason, "refused": sorted(finder.seen)}


def _refusal_in(exc: BaseException | None) -> BaseException | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UndeclaredImportError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: Sequence[str]) -> int:
    """Probe ``argv[0]`` (a model folder); ``--trusted`` allows a pickled model."""
    directory = Path(argv[0])
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # the model's prints must not mix in
        result = probe(directory, trusted="--trusted" in argv[1:])
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
