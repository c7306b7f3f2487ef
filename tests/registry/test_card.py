"""Model cards of versions that gated training runs registered: lineage, parameters,
metrics overall and by slice, feature importance, the gate's comparisons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ctloop.config import Settings
from ctloop.registry import ModelRegistry, open_registry
from ctloop.registry._card import ModelCard, model_card
from ctloop.store import open_artifact_store, open_metadata_store
from tests.registry.gated_training import MODEL, gated_training

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Project:
    home: Path
    registry: ModelRegistry
    fit_artifact: str  # the model artifact of the second run

    def card(self, reference: str) -> ModelCard:
        settings = Settings.load()
        return model_card(
            self.registry,
            open_metadata_store(settings.store_url),
            open_artifact_store(settings.artifact_url, settings.artifact_options),
            reference,
        )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """Two gated runs: v1 (no champion), then a better v2 compared with v1."""
    root = tmp_path_factory.mktemp("cards")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CTLOOP_HOME", str(root / "home"))
        for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR"):
            patch.delenv(name, raising=False)
        patch.chdir(root)
        gated_training.run(features="dep_delay")
        second = gated_training.run(features="dep_delay,weather")
        registry = open_registry()
        registry.update_description(MODEL, "<script>alert(1)</script> | logistic", version=2)
        yield Project(root / "home", registry, second.outputs["fit"]["output"].id)


def test_card_of_the_first_version_says_there_was_no_champion(project: Project) -> None:
    text = project.card(f"{MODEL}@1").to_markdown()
    assert text.startswith(f"# Model card: {MODEL}@1\n")
    assert "No champion yet: only absolute thresholds." in text
    assert "No champion was evaluated on these rows." in text
    assert "Infra validation passed" in text


def test_card_shows_lineage_metrics_slices_importance_and_comparisons(project: Project) -> None:
    card = project.card(f"{MODEL}@champion")
    text = card.to_markdown()
    assert card.version.version == 2
    assert "| inputs | dep_delay, weather |" in text
    assert "| Dataset | 300 | split_flights |" in text  # the training rows, with their maker
    assert "| fit |" in text and "features=dep_delay,weather" in text
    assert "| features | dep_delay,weather |" in text  # the run's parameters
    assert "| eval.auc |" in text and "| gate.passed | 1 |" in text  # the run's metrics
    assert "| metric | this model | champion |" in text
    assert "### Slices by carrier" in text and "### Slices by distance" in text
    assert "| [0, 1000) |" in text
    assert "Permutation importance" in text and "| weather |" in text
    assert "| auc may drop by 0.01 | slice carrier=AA |" in text
    assert "| auc >= 0.55 | overall |" in text
    assert "| scikit-learn |" in text
    assert "\\| logistic" in text  # a pipe in user text does not break a table


def test_html_is_self_contained_and_escaped(project: Project) -> None:
    page = project.card(f"{MODEL}@2").to_html()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<h3>Slices by carrier</h3>" in page and "<strong>passed</strong>" in page
    assert "http" not in page.replace('lang="en"', "")  # nothing fetched from elsewhere


def test_to_dict_is_plain_data(project: Project) -> None:
    data = project.card(f"{MODEL}@2").to_dict()
    text = json.dumps(data, default=str)
    assert data["blessing"]["passed"] is True
    assert data["evaluation"]["baseline"]["metrics"]["auc"] < data["evaluation"]["metrics"]["auc"]
    assert {d["made_by"] for d in data["data"]} == {"split_flights"}
    assert "carrier" in data["evaluation"]["slices"] and text


def test_a_version_registered_by_hand_finds_the_gate_that_took_its_model(
    project: Project,
) -> None:
    project.registry.register_version("by-hand", project.fit_artifact)
    card = project.card("by-hand@1")
    assert card.blessing is not None and card.blessing.champion_present
    assert card.evaluation is not None and card.evaluation.baseline is not None


def _ctloop(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env.update(CTLOOP_HOME=str(project.home), COLUMNS="200")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, str(REPO / "tests" / "registry" / "_cli.py"), "models", "card", *args],
        cwd=project.home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_cli_prints_markdown_json_and_writes_html(project: Project, tmp_path: Path) -> None:
    assert "### Slices by carrier" in _ctloop(project, f"{MODEL}@2").stdout
    data = json.loads(_ctloop(project, f"{MODEL}@1", "--json").stdout)
    assert data["model_version"]["version"] == 1 and data["blessing"]["champion_present"] is False
    page = tmp_path / "card.html"
    assert "wrote" in _ctloop(project, MODEL, "--html", str(page)).stdout
    assert f"Model card: {MODEL}@2" in page.read_text()
