"""Evaluations and blessings are stored and loaded back as record artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop.artifacts.records import RecordMaterializer
from ctloop.evaluate import Evaluation, SliceResult, gate


@pytest.fixture
def evaluation() -> Evaluation:
    slices = {"carrier": (SliceResult("UA", 50, {"auc": 0.8}), SliceResult("DL", 3, skipped="x"))}
    return Evaluation("classification", "late", 53, {"auc": 0.8}, slices=slices)


def _round_trip(value: object, folder: Path) -> object:
    materializer = RecordMaterializer()
    assert materializer.can_save(value)
    files, properties = materializer.to_bytes(value)
    paths = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    return materializer.load(paths, properties)


def test_evaluation_is_stored_and_loaded(evaluation: Evaluation, tmp_path: Path) -> None:
    assert _round_trip(evaluation, tmp_path) == evaluation


def test_blessing_is_stored_and_loaded(evaluation: Evaluation, tmp_path: Path) -> None:
    blessing = gate(evaluation, evaluation, absolute=["auc >= 0.7"], change=["auc may drop by 0"])
    assert _round_trip(blessing, tmp_path) == blessing
