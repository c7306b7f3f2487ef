"""scikit-learn estimators in the skops format (never pickle).

Kept apart from the other built-in materializers so that model flavors can use it without
importing the artifact store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ctloop.artifacts._materializer import Materializer
from ctloop.errors import ArtifactError

__all__ = ["SklearnMaterializer"]


def _qualified_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}".removeprefix("builtins.")


def _file(files: Mapping[str, Path], name: str, artifact_type: str) -> Path:
    try:
        return files[name]
    except KeyError:
        raise ArtifactError(
            f"the {artifact_type} artifact has no file {name!r} (it has "
            f"{sorted(files) or 'none'}); it was not written by this materializer"
        ) from None


class SklearnMaterializer(Materializer):
    """A scikit-learn estimator (anything deriving from ``BaseEstimator``) in the
    skops format, never pickle.

    Loading trusts only types from the scikit-learn, numpy and scipy namespaces (plus
    ``extra_trusted`` prefixes); a model that needs any other type is refused when
    saved and when loaded. To trust your own module, register a replacement::

        ctloop.register_materializer(SklearnMaterializer(extra_trusted=("myproject.",)))
    """

    name = "ctloop.sklearn"
    artifact_type = "Model"
    handles = ("sklearn.base.BaseEstimator",)
    trusted_namespaces: ClassVar[tuple[str, ...]] = ("sklearn", "numpy", "scipy")
    # skops lists the function a partial wraps as a type of its own, checked separately;
    # scikit-learn itself stores partials (HistGradientBoosting with categorical features)
    trusted_types: ClassVar[tuple[str, ...]] = ("functools.partial",)

    def __init__(self, *, extra_trusted: tuple[str, ...] = ()) -> None:
        self.extra_trusted = tuple(extra_trusted)

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.skops`` and check that it can be loaded back safely."""
        import sklearn
        import skops.io

        path = directory / "model.skops"
        try:
            skops.io.dump(value, path)
        except Exception as exc:  # skops raises whatever the object's state raises
            raise ArtifactError(
                f"the model of type {_qualified_name(value)} could not be saved with "
                f"skops ({exc}); keep its attributes to arrays, numbers and estimators"
            ) from exc
        self._trusted_types(path)
        return {"class": _qualified_name(value), "sklearn_version": sklearn.__version__}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``model.skops``, trusting only the allowed namespaces."""
        import skops.io

        path = _file(files, "model.skops", "Model")
        return skops.io.load(path, trusted=self._trusted_types(path))

    def _trusted_types(self, path: Path) -> list[str]:
        import skops.io

        untrusted = skops.io.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not self._is_trusted(t)]
        if refused:
            raise ArtifactError(
                f"the model in {path.name} needs types outside scikit-learn, numpy and "
                f"scipy, which ctloop does not load: {', '.join(refused)}; use only "
                "library estimators, or register SklearnMaterializer(extra_trusted=(...)) "
                "naming the modules you trust"
            )
        return list(untrusted)

    def _is_trusted(self, type_name: str) -> bool:
        if type_name in self.trusted_types:
            return True
        namespaces = (*self.trusted_namespaces, *self.extra_trusted)
        return any(
            type_name == ns.rstrip(".") or type_name.startswith(ns.rstrip(".") + ".")
            for ns in namespaces
        )
