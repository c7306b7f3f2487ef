"""A canary is rolled back only when it is worse beyond the sampling noise of both sides:
DeLong for AUC, a seeded bootstrap for RMSE, paired where both versions scored the same
requests; a small window's noise promotes, a large window's real drop rolls back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ctloop.errors import MonitorError
from ctloop.monitor import MonitorSettings
from ctloop.monitor._canary import CanaryJudgement, CanarySettings, judge_canary
from ctloop.monitor._comparison import compare_versions, delong_auc
from ctloop.store._deployments import deploy, start_canary
from ctloop.store.records import utcnow
from tests.monitor.conftest import FEATURES, Project, make_rows


def with_auc(n: int, auc: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labels (a third positive) and scores whose AUC on them is ``auc`` to the
    nearest attainable value: the positives' scores are shifted until it is."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 1 / 3).astype(int)
    noise = rng.normal(size=n)
    low, high = -6.0, 6.0
    for _ in range(60):
        shift = (low + high) / 2
        found = delong_auc(labels, noise + shift * labels)
        assert found is not None
        low, high = (shift, high) if found[0] < auc else (low, shift)
    return labels, noise + high * labels


def with_rmse(n: int, rmse: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` targets around 100 and predictions whose RMSE on them is exactly ``rmse``."""
    rng = np.random.default_rng(seed)
    truth = 100 + 10 * rng.normal(size=n)
    errors = rng.normal(size=n)
    return truth, truth + errors * rmse / np.sqrt(np.mean(errors**2))


def auc_verdict(primary_auc: float, canary_auc: float, rows: tuple[int, int]) -> bool:
    compared = compare_versions(
        with_auc(rows[0], primary_auc, 1), with_auc(rows[1], canary_auc, 2), metric="auc"
    )
    assert compared.worse_by == pytest.approx(primary_auc - canary_auc, abs=0.002)
    return compared.shown_worse_than(0.0)


def rmse_verdict(primary: float, canary: float, rows: tuple[int, int]) -> bool:
    compared = compare_versions(
        with_rmse(rows[0], primary, 3),
        with_rmse(rows[1], canary, 4),
        metric="rmse",
        task="regression",
    )
    assert compared.worse_by == pytest.approx(canary - primary)
    return compared.shown_worse_than(0.0)


def test_an_auc_within_the_noise_of_a_few_hundred_rows_is_not_shown_worse() -> None:
    assert auc_verdict(0.68, 0.67, (900, 400)) is False
    assert auc_verdict(0.68, 0.58, (900, 400)) is True
    assert auc_verdict(0.68, 0.66, (20_000, 20_000)) is True


def test_an_rmse_within_the_noise_of_a_few_hundred_rows_is_not_shown_worse() -> None:
    assert rmse_verdict(1.0, 1.01, (900, 400)) is False
    assert rmse_verdict(1.0, 1.10, (900, 400)) is True
    assert rmse_verdict(1.0, 1.02, (20_000, 20_000)) is True


def test_delong_agrees_with_sklearn_and_the_bootstrap_with_itself() -> None:
    from sklearn.metrics import roc_auc_score

    labels, scores = with_auc(500, 0.7, 5)
    rounded = np.round(scores, 1)  # ties count half
    found = delong_auc(labels, rounded)
    assert found is not None and found[0] == pytest.approx(roc_auc_score(labels, rounded))
    primary, canary = with_rmse(400, 1.0, 6), with_rmse(300, 1.05, 7)
    first = compare_versions(primary, canary, metric="rmse", task="regression")
    again = compare_versions(primary, canary, metric="rmse", task="regression")
    assert (first.low, first.high) == (again.low, again.high)
    assert first.low is not None and first.high is not None
    assert first.low < first.worse_by < first.high


def test_delong_bounds_match_a_bootstrap_of_the_same_auc() -> None:
    primary, canary = with_auc(900, 0.68, 8), with_auc(400, 0.66, 9)
    delong = compare_versions(primary, canary, metric="auc")
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(1000):
        a = rng.integers(0, 900, 900)
        b = rng.integers(0, 400, 400)
        found_a, found_b = (
            delong_auc(primary[0][a], primary[1][a]),
            delong_auc(canary[0][b], canary[1][b]),
        )
        assert found_a is not None and found_b is not None
        draws.append(found_a[0] - found_b[0])
    assert delong.low == pytest.approx(np.quantile(draws, 0.05), abs=0.006)


def test_paired_comparison_sees_a_small_drop_that_independent_samples_miss() -> None:
    labels, scores = with_auc(800, 0.70, 10)
    noise = np.random.default_rng(11).normal(scale=0.6, size=800)
    worse = scores + noise  # the same requests, a little blurred: a few points of AUC off
    paired = compare_versions(
        (labels, scores), (labels, worse), metric="auc", paired=(labels, scores, worse)
    )
    apart = compare_versions(
        (labels[:400], scores[:400]), (labels[400:], worse[400:]), metric="auc"
    )
    assert paired.paired and paired.method == "DeLong, paired"
    assert paired.worse_by is not None and 0.005 < paired.worse_by < 0.05
    assert paired.shown_worse_than(0.0)
    assert paired.high is not None and apart.high is not None and paired.low is not None
    assert apart.low is not None and not apart.shown_worse_than(0.0)
    assert paired.high - paired.low < (apart.high - apart.low) / 2


def test_bad_confidence_values_are_refused_naming_the_key() -> None:
    for bad in (1.5, 1.0, 0.2, "high", True):
        with pytest.raises(MonitorError, match=r"'monitoring: canary: confidence'"):
            CanarySettings.from_mapping({"confidence": bad})
    with pytest.raises(MonitorError, match=r"canary: confidence.*got 2"):
        MonitorSettings.from_mapping({"canary": {"confidence": 2}})
    with pytest.raises(MonitorError, match=r"bootstrap_samples.*got 10"):
        CanarySettings.from_mapping({"bootstrap_samples": 10})
    assert CanarySettings.from_mapping({"confidence": None}).confidence is None
    assert CanarySettings().confidence == 0.95


# -- the judge on the prediction log -----------------------------------------------------


@pytest.fixture
def canary(project: Project) -> Project:
    """``flights`` v1 as the primary of deployment ``flights`` and v2 as its canary."""
    workspace = project.workspace
    workspace.registry.register_version("flights", project.model_artifact_id)
    deploy(workspace, "flights", "flights", reason="first release")
    start_canary(workspace, "flights", 2, traffic=30, reason="v2 passed the gate")
    return project


def log_scores(
    project: Project, version: int, ids: list[str], labels: object, scores: object
) -> None:
    """Log ``scores`` as ``version``'s answers to requests ``ids``, and ``labels``."""
    from ctloop.serve._feedback import FeedbackLogger
    from ctloop.serve._prediction_log import PredictionLogger

    frame = make_rows(len(ids), 0)[FEATURES]
    now = utcnow().timestamp()
    with PredictionLogger(project.workspace, "flights", flush_rows=10**6) as logger:
        logger.log(version, "flights", ids, frame, np.asarray(scores, dtype=float), now)
    with FeedbackLogger(project.workspace, "flights", flush_rows=10**6) as feedback:
        feedback.log(ids, list(np.asarray(labels).tolist()), now)


def judged(project: Project, canary: dict[str, object] | None = None) -> CanaryJudgement:
    monitoring = {"canary": {"min_rows": 200, **(canary or {})}}
    settings = replace(project.settings, monitoring=monitoring)
    found = judge_canary(project.workspace, "flights", settings=settings)
    assert found is not None
    return found


def test_the_judge_promotes_a_canary_a_hundredth_worse_on_400_against_900(canary: Project) -> None:
    log_scores(canary, 1, [f"p{i}" for i in range(900)], *with_auc(900, 0.66, 12))
    log_scores(canary, 2, [f"c{i}" for i in range(400)], *with_auc(400, 0.65, 13))

    found = judged(canary)
    strict = judged(canary, {"confidence": None})

    assert found.decision == "promote", found.reason
    assert (found.primary_rows, found.canary_rows) == (900, 400)
    assert found.worse_by == pytest.approx(0.01, abs=0.002)
    assert found.low is not None and found.high is not None and found.low < 0 < found.high
    reason = found.reason
    assert "auc 0.65" in reason and "vs 0.66" in reason and "400 and 900 labelled" in reason
    assert "95% one-sided bounds" in reason and "DeLong, independent samples" in reason
    assert "not shown worse by more than 0.0 with 95% confidence" in reason
    assert strict.decision == "rollback"  # on the point values alone, as before


def test_the_judge_rolls_back_a_canary_a_tenth_worse_on_400_against_900(canary: Project) -> None:
    log_scores(canary, 1, [f"p{i}" for i in range(900)], *with_auc(900, 0.66, 14))
    log_scores(canary, 2, [f"c{i}" for i in range(400)], *with_auc(400, 0.56, 15))

    found = judged(canary)

    assert found.decision == "rollback", found.reason
    assert found.low is not None and found.low > 0
    assert "worse by more than 0.0 with 95% confidence" in found.reason
    assert judged(canary, {"allowed_drop": 0.2}).decision == "promote"


def test_the_judge_pairs_the_requests_both_versions_scored(canary: Project) -> None:
    labels, scores = with_auc(600, 0.70, 16)
    worse = scores + np.random.default_rng(17).normal(scale=0.6, size=600)
    ids = [f"r{i}" for i in range(600)]
    log_scores(canary, 1, ids, labels, scores)
    log_scores(canary, 2, ids, labels, worse)  # the canary shadowing the same requests

    found = judged(canary)

    assert found.paired_rows == 600 and found.method == "DeLong, paired"
    assert "on the same 600 labelled requests" in found.reason
    assert found.decision == "rollback", found.reason
