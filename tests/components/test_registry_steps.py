"""champion_model → evaluate → gate → register → promote, as pipelines run them: the first
model is registered without a champion, a worse one is stopped by the gate, a better one
becomes the champion."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from ctloop.artifacts.model import Model
from ctloop.components import RegisteredVersion, champion_model, evaluate, gate, promote, register
from ctloop.components._registry import BLESSING_TAG, EVALUATION_TAG, RUN_TAG
from ctloop.errors import GateFailedError, StepError
from ctloop.evaluate import Blessing
from ctloop.pipeline.tracking import use_workspace
from ctloop.registry import open_registry
from ctloop.store.records import new_id
from ctloop.store.workspace import Workspace
from tests.registry.gated_training import MODEL, flights, gated_training


def test_first_model_worse_model_better_model(home: Path) -> None:
    registry = open_registry()

    first = gated_training.run(features="dep_delay")
    v1 = first.load("register")
    assert isinstance(v1, RegisteredVersion) and v1.reference == f"{MODEL}@1"
    assert first.load("champion_model") is None  # no champion yet, passed on as None
    blessing = first.load("gate")
    assert blessing.passed and not blessing.champion_present
    assert "no champion" in blessing.notes[0] and blessing.infra.passed
    assert registry.resolve(f"{MODEL}@champion").version == 1
    tags = registry.get_version(MODEL, 1).tags
    gate_outputs = first.outputs["gate"]["output"]
    assert tags[BLESSING_TAG] == gate_outputs.id
    assert tags[EVALUATION_TAG] == first.outputs["evaluate"]["output"].id
    assert tags[RUN_TAG] == first.run_id
    assert registry.get_version(MODEL, 1).artifact_id == first.outputs["fit"]["output"].id

    with pytest.raises(StepError, match="not registered") as failed:
        gated_training.run(features="distance")  # noise only: worse than the champion
    assert failed.value.step == "register"
    result = failed.value.result  # type: ignore[attr-defined]
    assert result.step_status["gate"] == "succeeded"
    assert result.step_status["promote"] == "skipped"
    stopped = result.load("gate")  # the failed blessing is stored and can be read
    assert not stopped.passed and stopped.champion_present
    assert {c.where for c in stopped.failures} >= {"overall", "slice carrier=AA"}
    assert [v.version for v in registry.list_versions(MODEL)] == [1]  # nothing registered

    better = gated_training.run(features="dep_delay,weather")
    assert better.load("promote") == f"{MODEL}@2"
    assert registry.resolve(f"{MODEL}@champion").version == 2
    assert registry.resolve(f"{MODEL}@challenger").version == 2
    evaluation = better.load("evaluate")
    assert evaluation.baseline.metrics["auc"] < evaluation.metrics["auc"]
    moves = [m.describe() for m in registry.alias_history(MODEL, "champion")]
    assert moves[-1].startswith("champion: v1 → v2")


def test_champion_model_is_none_without_a_champion(home: Path) -> None:
    with use_workspace(Workspace.open()):
        assert champion_model(name=MODEL) is None


def _blessed(passed: bool) -> tuple[Model, Blessing]:
    data = flights(200)
    model = Model.from_estimator(
        LogisticRegression().fit(data[["dep_delay"]], data["late"]), data[["dep_delay"]]
    )
    ev = evaluate(model, data, label="late", attributions=False)
    return model, gate(ev, absolute=[f"auc >= {0.5 if passed else 0.99}"])


def test_register_refuses_an_unblessed_model(home: Path) -> None:
    model, blessing = _blessed(passed=False)
    with pytest.raises(GateFailedError, match="model 'flights' was not registered") as raised:
        register(model, blessing, name=MODEL)
    assert raised.value.blessing == blessing
    assert open_registry().list_models() == []


def test_register_and_promote_outside_a_pipeline(home: Path) -> None:
    model, blessing = _blessed(passed=True)
    with use_workspace(Workspace.open()):
        version = register(model, blessing, name=MODEL, alias=None, tags={"team": "ops"})
        assert version.version == 1 and version.alias is None
        assert version.tags == {"team": "ops"}  # no run: no provenance tags
        registry = open_registry()
        assert registry.get_version(MODEL, 1).artifact_id == version.artifact_id
        assert champion_model(name=MODEL) is None  # registered, not promoted yet
        assert promote(version, reason="manual review " + new_id()[:4]) == f"{MODEL}@1"
        champion = champion_model(name=MODEL)
    assert isinstance(champion, Model) and champion.signature.input_names == ["dep_delay"]
    assert registry.alias_history(MODEL, "champion")[-1].reason.startswith("manual review")
