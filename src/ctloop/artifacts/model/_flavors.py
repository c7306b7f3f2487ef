"""Model flavors: how one kind of model is written to files and read back, safely.

A flavor saves an estimator into an empty folder and loads it from the files it wrote.
Error contract for every flavor:

- ``save`` raises :class:`~ctloop.errors.ModelError` naming the estimator's type when it
  cannot write it; it writes only inside ``directory``;
- ``load`` raises :class:`~ctloop.errors.ModelError` naming the missing file when the files
  are not what it wrote, and :class:`~ctloop.errors.UnsafeModelError` rather than run
  untrusted code;
- ``requirements`` names the distributions (PyPI names) a process needs to load it, with
  the versions installed now.

Built in, in lookup order: ``xgboost`` (UBJSON), ``lightgbm`` (text model), ``sklearn``
(skops), ``python`` (a :class:`PythonModel` that saves its own files), and ``pickle``,
which is used only when the caller says the model is trusted.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ctloop._moved import current_module
from ctloop.errors import ModelError, UnsafeModelError

__all__ = [
    "FLAVORS",
    "ModelFlavor",
    "PythonModel",
    "flavor_for",
    "flavor_named",
    "installed_versions",
    "register_flavor",
]


class ModelFlavor(ABC):
    """Saves and loads one kind of model. ``name`` is stored with the model."""

    name: ClassVar[str]
    handles: ClassVar[tuple[str, ...]] = ()
    packages: ClassVar[tuple[str, ...]] = ()
    """Distributions a loading process needs (their installed versions are recorded)."""

    def can_save(self, estimator: Any) -> bool:
        """Whether this flavor handles ``estimator`` (by its classes' qualified names)."""
        return bool(_class_names(estimator) & set(self.handles))

    @abstractmethod
    def save(self, estimator: Any, directory: Path) -> dict[str, Any]:
        """Write ``estimator`` into ``directory``; return properties for :meth:`load`."""

    @abstractmethod
    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """The estimator, from the files :meth:`save` wrote (name → local path)."""

    def requirements(self, estimator: Any) -> dict[str, str]:
        """Distribution name → installed version, for what loading needs."""
        return installed_versions(self.packages)


class PythonModel(ABC):
    """Custom model code: subclass it, and ctloop stores it without pickle.

    The class is stored by reference (its module and name; the module must be importable
    where the model is loaded, like any code), its state by :meth:`save` as files::

        class Threshold(PythonModel):
            def __init__(self, cut): self.cut = cut
            def predict(self, frame): return (frame["score"] > self.cut).astype(int)
            def save(self, directory): (directory / "cut.txt").write_text(str(self.cut))
            @classmethod
            def load(cls, files): return cls(float(files["cut.txt"].read_text()))
    """

    @abstractmethod
    def predict(self, frame: Any) -> Any:
        """Predictions for the rows of the DataFrame ``frame``."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the model's state as files into the empty folder ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, files: Mapping[str, Path]) -> PythonModel:
        """The model, from the files :meth:`save` wrote (name → local path)."""


def installed_versions(packages: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Distribution name → installed version (packages not installed are left out)."""
    versions = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _class_names(value: Any) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(value).__mro__}


def _file(files: Mapping[str, Path], name: str, flavor: str) -> Path:
    try:
        return files[name]
    except KeyError:
        raise ModelError(
            f"the {flavor} model has no file {name!r} (it has {sorted(files) or 'none'}); "
            "it was not written by this flavor"
        ) from None


class SklearnFlavor(ModelFlavor):
    """scikit-learn estimators and pipelines in the skops format; loading trusts only
    scikit-learn, numpy and scipy types."""

    name = "sklearn"
    handles = ("sklearn.base.BaseEstimator",)
    packages = ("scikit-learn", "numpy", "scipy", "skops")

    def save(self, estimator: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.skops``."""
        self._materializer().save(estimator, directory)
        return {"class": _qualified(estimator)}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``model.skops``."""
        _file(files, "model.skops", self.name)
        return self._materializer().load(files, properties)

    @staticmethod
    def _materializer() -> Any:
        from ctloop.artifacts.sklearn_skops import SklearnMaterializer

        return SklearnMaterializer()


class XGBoostFlavor(ModelFlavor):
    """XGBoost's scikit-learn estimators and boosters in XGBoost's own UBJSON format."""

    name = "xgboost"
    handles = ("xgboost.sklearn.XGBModel", "xgboost.core.Booster")
    packages = ("xgboost", "numpy", "scipy")
    _classes = ("XGBClassifier", "XGBRegressor", "XGBRanker", "Booster")

    def save(self, estimator: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.ubj``."""
        estimator.save_model(str(directory / "model.ubj"))
        return {"class": type(estimator).__name__}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``model.ubj`` into the class it was saved from (an XGBoost class only)."""
        import xgboost

        name = str(properties.get("class", "Booster"))
        if name not in self._classes:
            raise ModelError(f"the xgboost model names class {name!r}, not an XGBoost class")
        model = getattr(xgboost, name)()
        # from bytes: a content-addressed blob has no file extension to tell the format
        model.load_model(bytearray(_file(files, "model.ubj", self.name).read_bytes()))
        return model

    def requirements(self, estimator: Any) -> dict[str, str]:
        """XGBoost (installed as ``xgboost`` or ``xgboost-cpu``), numpy, scipy."""
        versions = installed_versions(["numpy", "scipy"])
        for dist in ("xgboost", "xgboost-cpu"):
            versions.update(installed_versions([dist]))
        return versions


class LightGBMFlavor(ModelFlavor):
    """LightGBM's scikit-learn estimators and boosters in LightGBM's text format.

    A scikit-learn estimator comes back as a :class:`LightGBMModel`, which predicts
    like the estimator (``predict``, and ``predict_proba`` for classifiers)."""

    name = "lightgbm"
    handles = (
        "lightgbm.sklearn.LGBMModel",
        "lightgbm.basic.Booster",
        "ctloop.artifacts.model._flavors.LightGBMModel",
    )
    packages = ("lightgbm", "numpy", "scipy")

    def save(self, estimator: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.txt`` (and the class labels of a classifier)."""
        if isinstance(estimator, LightGBMModel):  # loaded earlier: save what it holds
            booster, name = estimator.booster, "LGBMModel"
        else:
            booster, name = getattr(estimator, "booster_", estimator), type(estimator).__name__
        booster.save_model(str(directory / "model.txt"))
        classes = getattr(estimator, "classes_", None)
        return {
            "class": name,
            "classes": None if classes is None else [_plain(c) for c in classes],
        }

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``model.txt``."""
        import lightgbm

        booster = lightgbm.Booster(model_file=str(_file(files, "model.txt", self.name)))
        if properties.get("class") == "Booster":
            return booster
        return LightGBMModel(booster, properties.get("classes"))


class LightGBMModel:
    """A loaded LightGBM scikit-learn model: a booster and, for classifiers, the labels."""

    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        self.booster = booster
        self.classes_ = None if classes is None else list(classes)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, one column per class."""
        import numpy as np

        raw = np.asarray(self.booster.predict(X))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, X: Any) -> Any:
        """Labels for a classifier, values for a regressor."""
        import numpy as np

        if self.classes_ is None:
            return np.asarray(self.booster.predict(X))
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]


class PythonFlavor(ModelFlavor):
    """A :class:`PythonModel`: the class by reference, the state by its own files."""

    name = "python"
    handles = ("ctloop.artifacts.model._flavors.PythonModel",)
    packages = ("pandas", "numpy")

    def save(self, estimator: Any, directory: Path) -> dict[str, Any]:
        """Let the model write its files; record its class."""
        cls = type(estimator)
        if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
            raise ModelError(
                f"the Python model class {cls.__qualname__} is defined in "
                f"{'a function' if '<locals>' in cls.__qualname__ else 'a script'}; "
                "define it at the top level of an importable module so it can be loaded"
            )
        estimator.save(directory)
        return {"class": f"{cls.__module__}:{cls.__qualname__}"}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Import the class and let it read its files."""
        module_name, _, qualname = str(properties.get("class", "")).partition(":")
        try:
            cls: Any = importlib.import_module(current_module(module_name))
            for part in qualname.split("."):
                cls = getattr(cls, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ModelError(
                f"the Python model class {module_name}:{qualname} cannot be imported "
                f"({exc}); install the package or put its module on PYTHONPATH"
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, PythonModel)):
            raise UnsafeModelError(
                f"{module_name}:{qualname} is not a ctloop PythonModel; refusing to load it"
            )
        return cls.load(files)


class PickleFlavor(ModelFlavor):
    """Any object, pickled: only for a model whose source the caller trusts, because
    loading a pickle runs whatever code it names."""

    name = "pickle"
    packages = ("numpy", "pandas")

    def can_save(self, estimator: Any) -> bool:
        """Never chosen by lookup; only asked for with ``trusted=True``."""
        return False

    def save(self, estimator: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.pkl``."""
        import pickle

        (directory / "model.pkl").write_bytes(pickle.dumps(estimator, protocol=5))
        return {"class": _qualified(estimator)}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Unpickle ``model.pkl`` (the caller has checked trust)."""
        import pickle

        return pickle.loads(_file(files, "model.pkl", self.name).read_bytes())


# XGBoost's and LightGBM's estimators derive from scikit-learn's: they come first.
FLAVORS: list[ModelFlavor] = [
    XGBoostFlavor(),
    LightGBMFlavor(),
    SklearnFlavor(),
    PythonFlavor(),
    PickleFlavor(),
]


def register_flavor(flavor: ModelFlavor) -> None:
    """Add a flavor, looked up before the built-in ones (replaces one of the same name)."""
    FLAVORS[:] = [flavor, *(f for f in FLAVORS if f.name != flavor.name)]


def flavor_named(name: str) -> ModelFlavor:
    """The flavor called ``name``."""
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    raise ModelError(
        f"no model flavor named {name!r} is installed (known: "
        f"{', '.join(f.name for f in FLAVORS)}); install the package that provides it"
    )


def flavor_for(estimator: Any, *, trusted: bool = False) -> ModelFlavor:
    """The flavor that saves ``estimator``; pickle only when ``trusted``."""
    for flavor in FLAVORS:
        if flavor.can_save(estimator):
            return flavor
    if trusted:
        return flavor_named("pickle")
    raise UnsafeModelError(
        f"a model of type {_qualified(estimator)} is not a scikit-learn, XGBoost or "
        "LightGBM model or a ctloop PythonModel, so only pickle could save it; ctloop "
        "refuses pickle by default because loading a pickle runs arbitrary code. Wrap it "
        "in a PythonModel that saves its own files, or pass trusted=True if you trust "
        "everyone who can write to this store"
    )


def _qualified(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
