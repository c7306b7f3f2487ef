"""The gate: may a candidate model replace the champion?

Absolute thresholds (``"auc >= 0.70"``) apply to the candidate's overall metrics. Change
thresholds (``"auc may drop by 0.01"``) compare the candidate with the champion, overall
and in every slice that has at least ``min_slice_rows`` rows in both; the direction of a
drop is known per metric (for ``rmse`` a drop is a rise). With no champion (the first
model) only the absolute thresholds apply, and the blessing says so.

>>> from ctloop.evaluate import Evaluation
>>> candidate = Evaluation("classification", "y", 100, {"auc": 0.80})
>>> champion = Evaluation("classification", "y", 100, {"auc": 0.82})
>>> gate(candidate, champion, absolute=["auc >= 0.7"], change=["auc may drop by 0.01"]).passed
False
>>> gate(candidate, None, absolute=["auc >= 0.7"], change=["auc may drop by 0.01"]).passed
True
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ctloop.artifacts.model.infra import InfraResult
from ctloop.errors import EvaluationError, GateFailedError
from ctloop.evaluate._metrics import is_higher_better
from ctloop.evaluate._report import Evaluation
from ctloop.evaluate._slices import SliceResult

NO_CHAMPION_NOTE = "no champion: change thresholds not applied"
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_ABSOLUTE = re.compile(r"(?i)^\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")
_CHANGE = re.compile(r"(?i)^\s*([a-z_0-9]+)\s+may\s+(?:drop|worsen)\s+by\s+([-+0-9.eE]+)\s*$")
_TOLERANCE = 1e-12  # float noise must not fail a gate set exactly at the drop


@dataclass(frozen=True)
class Threshold:
    """An absolute bound on a metric of the candidate: ``Threshold("auc", ">=", 0.7)``.

    >>> Threshold.parse("rmse <= 12")
    Threshold(metric='rmse', op='<=', value=12.0)
    """

    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        is_higher_better(self.metric)  # refuses an unknown metric
        if self.op not in _OPERATORS:
            raise EvaluationError(
                f"threshold on {self.metric!r} has operator {self.op!r}; use one of >=, >, <=, <"
            )

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """Read ``"METRIC OP NUMBER"`` such as ``"auc >= 0.70"``."""
        match = _ABSOLUTE.match(text)
        if not match:
            raise EvaluationError(
                f"threshold {text!r} does not parse; write METRIC OP NUMBER, e.g. 'auc >= 0.70'"
            )
        return cls(match[1].lower(), match[2], _number(match[3], text))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the bound.

        >>> Threshold("auc", ">=", 0.7).holds(0.7)
        True
        """
        return _OPERATORS[self.op](value, self.value)


@dataclass(frozen=True)
class ChangeThreshold:
    """How much worse than the champion a metric may get: ``ChangeThreshold("auc", 0.01)``.

    >>> ChangeThreshold.parse("rmse may drop by 0.5").higher_is_better
    False
    """

    metric: str
    max_drop: float

    def __post_init__(self) -> None:
        is_higher_better(self.metric)  # refuses an unknown metric
        if self.max_drop < 0:
            raise EvaluationError(
                f"change threshold on {self.metric!r} has max_drop {self.max_drop}; use 0 or more"
            )

    @classmethod
    def parse(cls, text: str) -> ChangeThreshold:
        """Read ``"METRIC may drop by NUMBER"`` such as ``"auc may drop by 0.01"``."""
        match = _CHANGE.match(text)
        if not match:
            raise EvaluationError(
                f"change threshold {text!r} does not parse; write METRIC may drop by NUMBER, "
                "e.g. 'auc may drop by 0.01'"
            )
        return cls(match[1].lower(), _number(match[2], text))

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger value of the metric is better."""
        return is_higher_better(self.metric)

    def __str__(self) -> str:
        return f"{self.metric} may drop by {self.max_drop:g}"

    def drop(self, candidate: float, champion: float) -> float:
        """How much worse the candidate is than the champion (negative: better).

        >>> ChangeThreshold("rmse", 1.0).drop(candidate=12.0, champion=10.0)
        2.0
        """
        return champion - candidate if self.higher_is_better else candidate - champion


@dataclass(frozen=True)
class Comparison:
    """One check of the gate, with its numbers.

    ``scope`` is ``"overall"`` or ``"slice"``; a slice check names the slice and its value.

    >>> Comparison("auc", "overall", None, None, 0.8, None, "auc >= 0.7", True, "0.8 >= 0.7").where
    'overall'
    """

    metric: str
    scope: str
    slice_name: str | None
    slice_value: str | None
    candidate: float | None
    champion: float | None
    threshold: str
    passed: bool
    reason: str

    @property
    def where(self) -> str:
        """``overall`` or ``slice NAME=VALUE``."""
        return (
            "overall" if self.scope == "overall" else f"slice {self.slice_name}={self.slice_value}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Comparison:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


@dataclass(frozen=True)
class Blessing:
    """The gate's verdict: ``passed`` and every comparison behind it.

    ``infra`` is the result of loading the model in a fresh process (infra validation),
    when the gate ran it; a model that failed it is not blessed.

    >>> Blessing(True, False, (), (NO_CHAMPION_NOTE,)).raise_for_failure()
    """

    __ctloop_artifact__ = "Blessing"  # artifact type, see ctloop.artifacts.records

    passed: bool
    champion_present: bool
    comparisons: tuple[Comparison, ...]
    notes: tuple[str, ...] = ()
    infra: InfraResult | None = None

    @property
    def failures(self) -> tuple[Comparison, ...]:
        """The comparisons that failed."""
        return tuple(c for c in self.comparisons if not c.passed)

    def raise_for_failure(self) -> None:
        """Raise ``GateFailedError`` listing every failed comparison, if the gate failed."""
        if self.passed:
            return
        found = [f"  - {c.where}: {c.threshold}: {c.reason}" for c in self.failures]
        if self.infra is not None and not self.infra.passed:
            found.append(f"  - infra validation ({self.infra.stage}): {self.infra.reason}")
        lines = "\n".join(found)
        raise GateFailedError(
            f"the candidate model failed {len(found)} gate check(s):\n{lines}\n"
            "improve the model, or change the thresholds if the drop is expected",
            blessing=self,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {
            "passed": self.passed,
            "champion_present": self.champion_present,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "notes": list(self.notes),
            "infra": None if self.infra is None else self.infra.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Blessing:
        """Read what ``to_dict`` wrote."""
        comparisons = tuple(Comparison.from_dict(c) for c in data["comparisons"])
        infra = data.get("infra")
        return cls(
            data["passed"],
            data["champion_present"],
            comparisons,
            tuple(data["notes"]),
            None if infra is None else InfraResult.from_dict(infra),
        )


def gate(
    candidate: Evaluation,
    champion: Evaluation | None,
    *,
    absolute: Sequence[Threshold | str] = (),
    change: Sequence[ChangeThreshold | str] = (),
    min_slice_rows: int = 30,
    infra: InfraResult | None = None,
) -> Blessing:
    """Check ``candidate`` against absolute thresholds and against ``champion``.

    A slice the champion lacks, or with too few rows, is reported as passed with the reason.
    ``infra`` (from :func:`ctloop.artifacts.model.infra.check_model_in_subprocess`) is
    recorded in the blessing, and a failed one fails the gate.

    >>> gate(Evaluation("regression", "y", 9, {"rmse": 13.0}), None, absolute=["rmse <= 12"]).passed
    False
    """
    bounds = [t if isinstance(t, Threshold) else Threshold.parse(t) for t in absolute]
    rules = [c if isinstance(c, ChangeThreshold) else ChangeThreshold.parse(c) for c in change]
    comparisons = [_absolute(candidate, t) for t in bounds]
    notes: tuple[str, ...] = ()
    if champion is None:
        notes = (NO_CHAMPION_NOTE,) if rules else ()
    else:
        for rule in rules:
            comparisons.append(_overall_change(candidate, champion, rule))
            comparisons.extend(_slice_changes(candidate, champion, rule, min_slice_rows))
    passed = all(c.passed for c in comparisons) and (infra is None or infra.passed)
    return Blessing(passed, champion is not None, tuple(comparisons), notes, infra)


def _number(text: str, whole: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise EvaluationError(f"threshold {whole!r} has {text!r} where a number belongs") from exc


def _metric(evaluation: Evaluation, metric: str, role: str) -> float | None:
    if metric not in evaluation.metrics:
        raise EvaluationError(
            f"metric {metric!r} is not in the {role}'s evaluation (it has "
            f"{', '.join(evaluation.metrics) or 'none'}); add it to metrics= of evaluate_model"
        )
    return evaluation.metrics[metric]


def _absolute(candidate: Evaluation, bound: Threshold) -> Comparison:
    value = _metric(candidate, bound.metric, "candidate")
    if value is None:
        reason = f"{bound.metric} is {candidate.notes.get(bound.metric, 'undefined')}"
        passed = False
    else:
        passed = bound.holds(value)
        reason = f"{value:.6g} {'meets' if passed else 'breaks'} {bound}"
    return Comparison(bound.metric, "overall", None, None, value, None, str(bound), passed, reason)


def _overall_change(
    candidate: Evaluation, champion: Evaluation, rule: ChangeThreshold
) -> Comparison:
    mine = _metric(candidate, rule.metric, "candidate")
    theirs = _metric(champion, rule.metric, "champion")
    passed, reason = _judge(rule, mine, theirs)
    return Comparison(rule.metric, "overall", None, None, mine, theirs, str(rule), passed, reason)


def _slice_changes(
    candidate: Evaluation, champion: Evaluation, rule: ChangeThreshold, min_rows: int
) -> list[Comparison]:
    return [
        _slice_change(rule, name, mine, champion.slice(name, mine.value), min_rows)
        for name, results in candidate.slices.items()
        for mine in results
    ]


def _slice_change(
    rule: ChangeThreshold,
    name: str,
    mine: SliceResult,
    theirs: SliceResult | None,
    min_rows: int,
) -> Comparison:
    a = mine.metrics.get(rule.metric)
    b = None if theirs is None else theirs.metrics.get(rule.metric)
    if theirs is None:
        passed, reason = True, "slice not in the champion's evaluation: not compared"
    elif min(mine.rows, theirs.rows) < min_rows or not (mine.scored and theirs.scored):
        passed = True
        reason = (
            f"too few rows ({mine.rows} candidate, {theirs.rows} champion; "
            f"min_slice_rows {min_rows}): not compared"
        )
    else:
        passed, reason = _judge(rule, a, b)
    return Comparison(rule.metric, "slice", name, mine.value, a, b, str(rule), passed, reason)


def _judge(rule: ChangeThreshold, mine: float | None, theirs: float | None) -> tuple[bool, str]:
    if theirs is None:
        return True, f"champion's {rule.metric} is undefined: not compared"
    if mine is None:
        return False, f"candidate's {rule.metric} is undefined while the champion's is {theirs:.6g}"
    drop = rule.drop(mine, theirs)
    passed = drop <= rule.max_drop + _TOLERANCE
    verb = "within" if passed else "exceeds"
    return passed, f"{mine:.6g} vs champion {theirs:.6g}: drop {drop:.6g} {verb} {rule.max_drop:g}"
