"""ctloop serve of a model trained on a feature service: the client sends entity keys
and request fields, the server reads the online features itself."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression

from ctloop.artifacts.model import Model
from ctloop.components._features import service_lineage
from ctloop.features import materialize
from ctloop.features._repo import load_definitions
from ctloop.store._features import DefinitionDraft
from tests.features.test_online import DEFINITIONS, FIRST, hours_ago, weather_rows
from tests.serve.conftest import ServingStore, live_server, store

__all__ = ["store"]

INPUTS = ["temp", "visib", "sched_dep_time", "cold_morning"]


def served_model(store: ServingStore) -> Model:
    tmp = store.tmp
    weather_rows(tmp / "weather.parquet", FIRST)
    (tmp / "features.py").write_text(
        DEFINITIONS.format(source=tmp / "weather.parquet", routes=tmp / "weather.parquet")
    )
    workspace = store.workspace
    repo = load_definitions(tmp / "features.py")
    workspace.features.apply([DefinitionDraft(*spec) for spec in repo.specs()])
    materialize(workspace, ["weather"], None, hours_ago(0))
    X = pd.DataFrame({"temp": [1.0, 9.0, 2.0, 8.0], "visib": [10, 3, 9, 2],
                      "sched_dep_time": [600, 1500, 700, 1600],
                      "cold_morning": [True, False, True, False]})  # fmt: skip
    estimator = LogisticRegression().fit(X, [1, 0, 1, 0])
    lineage = service_lineage(workspace, "flights_v1")
    model = Model.from_estimator(estimator, X, metadata={"feature_service": lineage})
    store.register(model, alias="champion")
    return model


def test_entity_keys_and_request_fields_are_predicted_with_online_features(
    store: ServingStore, tmp_path: Path
) -> None:
    model = served_model(store)
    with live_server(store.config(log_predictions=False)) as live:
        answer = live.client.post(
            "/predict",
            json={"records": [{"origin": "EWR", "sched_dep_time": 700},
                              {"origin": "JFK", "sched_dep_time": 1400}]},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        # EWR's latest row is 2.0 °C, visibility 9; JFK's 5.0 °C, 8
        expected = model.predict(
            [{"temp": 2.0, "visib": 9, "sched_dep_time": 700, "cold_morning": True},
             {"temp": 5.0, "visib": 8, "sched_dep_time": 1400, "cold_morning": False}]
        )  # fmt: skip
        assert answer.json()["predictions"] == list(expected)

        mlflow = live.client.post(
            "/invocations",
            json={"dataframe_split": {"columns": ["origin", "sched_dep_time"],
                                      "data": [["EWR", 700]]}},
        )  # fmt: skip
        assert mlflow.status_code == 200 and mlflow.json()["predictions"] == [expected[0]]

        missing = live.client.post("/predict", json={"records": [{"sched_dep_time": 700}]})
        assert missing.status_code == 422
        assert missing.json()["field"] == "origin" and "'origin'" in missing.json()["error"]
        no_field = live.client.post("/predict", json={"records": [{"origin": "EWR"}]})
        assert no_field.status_code == 422 and no_field.json()["field"] == "sched_dep_time"
