"""The gate: absolute thresholds, change thresholds against the champion, the blessing."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctloop.errors import EvaluationError, GateFailedError
from ctloop.evaluate import (
    Blessing,
    ChangeThreshold,
    Evaluation,
    SliceResult,
    Threshold,
    gate,
)
from ctloop.evaluate._gate import NO_CHAMPION_NOTE


def _classifier(auc: float, slices: dict[str, tuple[float, int]] | None = None) -> Evaluation:
    results = tuple(
        SliceResult(value, rows, {"auc": value_auc})
        for value, (value_auc, rows) in (slices or {}).items()
    )
    return Evaluation("classification", "late", 1000, {"auc": auc}, slices={"carrier": results})


def test_first_model_gets_absolute_thresholds_only_and_is_told_so() -> None:
    blessing = gate(_classifier(0.75), None, absolute=["auc >= 0.70"], change=["auc may drop by 0"])
    assert blessing.passed and not blessing.champion_present
    assert blessing.notes == (NO_CHAMPION_NOTE,)
    assert [c.threshold for c in blessing.comparisons] == ["auc >= 0.7"]


def test_first_model_below_an_absolute_threshold_fails() -> None:
    blessing = gate(_classifier(0.65), None, absolute=["auc >= 0.70"])
    assert not blessing.passed
    (failure,) = blessing.failures
    assert (failure.candidate, failure.champion, failure.scope) == (0.65, None, "overall")
    assert "0.65 breaks auc >= 0.7" in failure.reason


def test_overall_drop_beyond_the_allowance_fails() -> None:
    blessing = gate(_classifier(0.80), _classifier(0.82), change=["auc may drop by 0.01"])
    assert not blessing.passed and blessing.champion_present
    assert blessing.failures[0].champion == 0.82
    assert "drop 0.02 exceeds 0.01" in blessing.failures[0].reason


def test_drop_exactly_at_the_allowance_passes() -> None:
    assert gate(_classifier(0.71), _classifier(0.72), change=["auc may drop by 0.01"]).passed


def test_a_drop_in_one_slice_fails_and_names_it() -> None:
    champion = _classifier(0.80, {"UA": (0.80, 500), "AA": (0.80, 500)})
    candidate = _classifier(0.81, {"UA": (0.85, 500), "AA": (0.70, 500)})
    blessing = gate(candidate, champion, change=[ChangeThreshold("auc", 0.01)])
    assert not blessing.passed
    (failure,) = blessing.failures
    assert (failure.slice_name, failure.slice_value) == ("carrier", "AA")
    with pytest.raises(
        GateFailedError, match=re.escape("slice carrier=AA: auc may drop by 0.01")
    ) as caught:
        blessing.raise_for_failure()
    assert caught.value.blessing is blessing


def test_small_and_new_slices_are_reported_not_failed() -> None:
    champion = _classifier(0.80, {"UA": (0.90, 10)})
    candidate = _classifier(0.80, {"UA": (0.50, 10), "B6": (0.40, 400)})
    blessing = gate(candidate, champion, change=["auc may drop by 0.01"], min_slice_rows=30)
    assert blessing.passed
    reasons = {c.slice_value: c.reason for c in blessing.comparisons if c.scope == "slice"}
    assert "too few rows" in reasons["UA"]
    assert "not in the champion" in reasons["B6"]


def test_lower_is_better_metrics_fail_when_they_rise() -> None:
    champion = Evaluation("regression", "minutes", 100, {"rmse": 10.0, "mae": 8.0})
    candidate = Evaluation("regression", "minutes", 100, {"rmse": 11.0, "mae": 7.0})
    blessing = gate(
        candidate,
        champion,
        absolute=["rmse <= 12"],
        change=["rmse may drop by 0.5", "mae may drop by 0"],
    )
    assert [(c.threshold, c.passed) for c in blessing.comparisons] == [
        ("rmse <= 12", True),
        ("rmse may drop by 0.5", False),
        ("mae may drop by 0", True),
    ]


def test_undefined_candidate_metric_fails_an_absolute_threshold() -> None:
    candidate = Evaluation(
        "classification",
        "y",
        5,
        {"auc": None},
        notes={"auc": "undefined: y_true holds only one class"},
    )
    blessing = gate(candidate, None, absolute=["auc >= 0.5"])
    assert not blessing.passed and "one class" in blessing.failures[0].reason


def test_metric_missing_from_the_evaluation_is_refused() -> None:
    with pytest.raises(
        EvaluationError, match=r"'f1' is not in the candidate's evaluation \(it has auc\)"
    ):
        gate(_classifier(0.8), None, absolute=["f1 >= 0.5"])


def test_blessing_round_trips_through_json() -> None:
    champion = _classifier(0.80, {"UA": (0.80, 500)})
    blessing = gate(
        _classifier(0.79, {"UA": (0.70, 500)}),
        champion,
        absolute=["auc > 0.5"],
        change=["auc may drop by 0.05"],
    )
    assert Blessing.from_dict(json.loads(json.dumps(blessing.to_dict()))) == blessing
    assert Blessing.__ctloop_artifact__ == "Blessing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auc >= 0.70", Threshold("auc", ">=", 0.70)),
        ("RMSE<12", Threshold("rmse", "<", 12.0)),
        ("log_loss <= 1e-1", Threshold("log_loss", "<=", 0.1)),
    ],
)
def test_threshold_strings_parse(text: str, expected: Threshold) -> None:
    assert Threshold.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("auc => 0.7", "threshold 'auc => 0.7' does not parse"),
        ("auc >= high", "threshold 'auc >= high' does not parse"),
        ("speed >= 3", "unknown metric 'speed'"),
        ("auc >= 1.2.3", "'1.2.3' where a number belongs"),
    ],
)
def test_bad_threshold_strings_name_the_text(text: str, message: str) -> None:
    with pytest.raises(EvaluationError, match=re.escape(message)):
        Threshold.parse(text)


def test_bad_change_strings_name_the_text() -> None:
    with pytest.raises(
        EvaluationError, match=re.escape("change threshold 'auc drops 0.1' does not parse")
    ):
        ChangeThreshold.parse("auc drops 0.1")
    with pytest.raises(EvaluationError, match=re.escape("max_drop -0.1")):
        ChangeThreshold.parse("auc may drop by -0.1")


@given(st.floats(0, 1), st.sampled_from(["auc", "f1", "ece", "log_loss"]))
def test_a_model_never_fails_against_itself(value: float, metric: str) -> None:
    ev = Evaluation("classification", "y", 10, {metric: value})
    assert gate(ev, ev, change=[ChangeThreshold(metric, 0.0)]).passed
