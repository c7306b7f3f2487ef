"""Service tests against the real prediction server on 127.0.0.1: a served model passes
on all three protocols; a wrong name, missing inputs or a tight budget fail by name."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ctloop.artifacts.model import Model
from ctloop.testing import CheckFailed, ServedModel, check_service, serve_model

pytest_plugins = ["ctloop.testing.plugin"]


def frame(rows: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "delay": rng.normal(10, 5, rows),
            "stops": rng.integers(0, 3, rows).astype("int64"),
            "carrier": rng.choice(["AA", "UA"], rows).astype(object),
        }
    )
    return data, (data.delay > 10).astype("int64").to_numpy()


@pytest.fixture(scope="module")
def model() -> Model:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    data, late = frame()
    numbers = ColumnTransformer([("n", "passthrough", ["delay", "stops"])])
    fitted = Pipeline([("select", numbers), ("fit", LogisticRegression())]).fit(data, late)
    return Model.from_estimator(fitted, data)


@pytest.fixture(scope="module")
def served(model: Model) -> Iterator[ServedModel]:
    with serve_model(model, name="flights") as running:
        yield running


def test_the_served_model_answers_three_protocols_like_the_model(
    served: ServedModel, model: Model
) -> None:
    rows, _ = frame(20)
    latencies = check_service(
        served.url, rows, model_name="flights", latency_budget_ms=2000, expected=model.predict(rows)
    )
    assert set(latencies) == {"native", "mlflow", "v2"}
    assert all(ms > 0 for ms in latencies.values())


def test_an_impossible_latency_budget_fails_naming_each_protocol(served: ServedModel) -> None:
    rows, _ = frame(20)
    with pytest.raises(CheckFailed) as failure:
        check_service(served.url, rows, model_name="flights", latency_budget_ms=0.0001)
    message = str(failure.value)
    assert message.startswith(
        "check service_latency failed: 20 rows took longer than the 0.0001 ms budget"
    )
    assert "native " in message and "mlflow " in message and "v2 " in message


def test_rows_without_a_signature_column_fail_before_predicting(served: ServedModel) -> None:
    rows, _ = frame(5)
    with pytest.raises(CheckFailed, match=r"needs inputs \['carrier'\] that the test rows lack"):
        check_service(served.url, rows.drop(columns=["carrier"]), model_name="flights")


def test_a_wrong_model_name_is_named_with_the_answer(served: ServedModel) -> None:
    rows, _ = frame(5)
    with pytest.raises(CheckFailed, match=r"GET /v2/models/churn answered 404"):
        check_service(served.url, rows, model_name="churn")


def test_expected_values_that_differ_are_named_by_row(served: ServedModel, model: Model) -> None:
    rows, _ = frame(5)
    expected = model.predict(rows)
    expected[2] += 0.5
    with pytest.raises(
        CheckFailed, match=r"native predictions differ from the expected values at 1 rows \(row 2:"
    ):
        check_service(served.url, rows, model_name="flights", expected=expected)


def test_the_plugin_serves_a_model_for_one_test(ctloop_serve, model: Model) -> None:  # type: ignore[no-untyped-def]
    running = ctloop_serve(model, name="churn")
    rows, _ = frame(3)
    check_service(running.url, rows, model_name="churn", latency_budget_ms=2000)


def test_the_plugin_workspace_is_in_memory(ctloop_workspace) -> None:  # type: ignore[no-untyped-def]
    assert ctloop_workspace.location == "an in-memory workspace"
    assert ctloop_workspace.registry.list_models() == []
