"""Infra validation: a model is loaded in a fresh, isolated process with only what its
requirements declare, and called with its input example."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ctloop.artifacts.model import Model
from ctloop.artifacts.model._probe import allowed_closure, normalize, refused_modules
from ctloop.artifacts.model.infra import InfraResult, _code_paths, check_model_in_subprocess
from tests.artifacts.infra_models import BrokenModel, ImportingModel, SlowModel

FEATURES = pd.DataFrame({"x": np.linspace(0.0, 1.0, 40), "y": np.linspace(1.0, 2.0, 40)})


def _python_model(estimator: ImportingModel, **requirements: str) -> Model:
    return Model.from_estimator(estimator, FEATURES, requirements=requirements)


def test_a_sklearn_model_loads_and_predicts_in_a_fresh_process() -> None:
    labels = (FEATURES["x"] > 0.5).astype(int)
    model = Model.from_estimator(LogisticRegression().fit(FEATURES, labels), FEATURES)
    result = check_model_in_subprocess(model)
    assert result.passed, result.reason
    assert result.stage == "predict" and result.seconds > 0
    assert "sklearn" not in result.refused and "skops" not in result.refused


def test_an_undeclared_import_fails_with_the_package_named(tmp_path: Path) -> None:
    _python_model(ImportingModel("lightgbm")).save(tmp_path / "model")
    result = check_model_in_subprocess(tmp_path / "model")  # a saved folder works too
    assert not result.passed
    assert result.stage == "predict"
    assert "the model imports lightgbm, which its requirements do not declare" in result.reason
    assert "lightgbm" in result.refused


def test_a_declared_import_and_its_own_requirements_are_allowed() -> None:
    # croniter needs python-dateutil: the closure of what the model declares is allowed
    croniter = importlib.metadata.version("croniter")
    model = _python_model(ImportingModel("croniter"), croniter=croniter)
    result = check_model_in_subprocess(model)
    assert result.passed, result.reason


def test_a_model_whose_predict_raises_fails(tmp_path: Path) -> None:
    _python_model(BrokenModel()).save(tmp_path / "saved")
    # an artifact's files (relative name -> local path) are probed as a folder
    saved = [p for p in (tmp_path / "saved").rglob("*") if p.is_file()]
    files = {p.relative_to(tmp_path / "saved").as_posix(): p for p in saved}
    result = check_model_in_subprocess(files)
    assert not result.passed and result.stage == "predict"
    assert "ValueError: column 'x' has negative values" in result.reason


def test_a_requirement_not_installed_fails_with_the_compatibility_message() -> None:
    model = _python_model(ImportingModel(), **{"ctloop-no-such-package": "1.0"})
    result = check_model_in_subprocess(model)
    assert not result.passed and result.stage == "requirements"
    assert "ModelCompatibilityError" in result.reason
    assert "ctloop-no-such-package 1.0 (not installed)" in result.reason


def test_a_model_that_hangs_fails_at_the_timeout() -> None:
    result = check_model_in_subprocess(_python_model(SlowModel()), timeout=1)
    assert not result.passed
    assert result.reason == "the model did not load and predict within 1 s"


def test_the_probe_finds_ctloop_where_this_process_does() -> None:
    paths = _code_paths()
    assert (Path(paths[0]) / "ctloop" / "__init__.py").is_file()
    assert str(Path(__file__).resolve().parents[2]) in paths  # project code, e.g. tests/


def test_the_allowed_closure_follows_requirements_but_not_ctloops_own() -> None:
    allowed = allowed_closure(["scikit-learn"])
    assert {"scikit-learn", "scipy", "joblib", "numpy", "pandas", "orjson", "ctloop"} <= allowed
    assert "lightgbm" not in allowed and "fastapi" not in allowed  # ctloop needs fastapi
    refused = refused_modules(allowed)
    assert refused["lightgbm"] == "lightgbm" and "sklearn" not in refused
    assert normalize("Scikit_Learn") == "scikit-learn"


def test_infra_result_round_trips() -> None:
    result = InfraResult(False, "the model imports x", 1.25, "load", ("x",))
    assert InfraResult.from_dict(result.to_dict()) == result


@pytest.mark.parametrize("module", ["os", "json"])
def test_the_standard_library_is_never_refused(module: str) -> None:
    assert module not in refused_modules(allowed_closure([]))
