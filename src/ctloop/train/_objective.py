"""The objective :func:`~ctloop.train.tune` gives the study: make a trial's estimator,
fit it in stages on the training data, score it on the validation data, keep the best.

:class:`FitAndScore` is picklable (without what it kept), so that worker processes and
Ray tasks run it; each gives back the best estimator it fitted (:meth:`FitAndScore.kept`)
and :func:`best_kept` picks the study's best among them.

>>> best_kept([(0, 0.7, "a"), (1, 0.9, "b"), (2, 0.9, "c")], "maximize")
'b'
"""

from __future__ import annotations

import threading
from typing import Any

from ctloop.errors import TuningError
from ctloop.train._fitting import clone_estimator
from ctloop.train._parallel import TrialReporter
from ctloop.train._staging import ValidationScorer, staged_fit
from ctloop.train._threads import held_threads
from ctloop.train._workers import worker_threads

__all__ = ["EstimatorMaker", "FitAndScore", "best_kept", "rank"]


class _BestSoFar:
    """The best fitted estimator seen so far, with its trial number (trials may run in
    threads); ties go to the lower number, as in :func:`rank`."""

    def __init__(self, direction: str) -> None:
        self.direction = direction
        self.kept: tuple[int, float, Any] | None = None
        self._lock = threading.Lock()

    def offer(self, number: int, score: float, estimator: Any) -> None:
        place = rank(self.direction, score, number)
        with self._lock:
            if self.kept is None or place < rank(self.direction, self.kept[1], self.kept[0]):
                self.kept = (number, score, estimator)


def rank(direction: str, score: float, number: int) -> tuple[float, int]:
    """Sorts trials best first; ties go to the lower trial number.

    >>> sorted([(0, 0.5), (1, 0.9), (2, 0.9)], key=lambda t: rank("maximize", t[1], t[0]))
    [(1, 0.9), (2, 0.9), (0, 0.5)]
    """
    return (-score if direction == "maximize" else score, number)


def best_kept(kept: list[tuple[int, float, Any]], direction: str) -> Any:
    """The estimator of the best trial among ``(number, score, estimator)`` the workers
    kept; ``None`` when they kept none.

    >>> best_kept([], "minimize") is None
    True
    """
    return min(kept, key=lambda k: rank(direction, k[1], k[0]))[2] if kept else None


class EstimatorMaker:
    """Makes a trial's estimator: a clone of ``estimator`` with the trial's parameters, or
    ``estimator(**params)`` for a factory function.

    >>> from sklearn.tree import DecisionTreeClassifier
    >>> make = EstimatorMaker(DecisionTreeClassifier(max_depth=2))
    >>> make({"max_depth": 5}).max_depth, make.describe
    (5, "estimator 'DecisionTreeClassifier'")
    """

    def __init__(self, estimator: Any) -> None:
        self.is_estimator = hasattr(estimator, "get_params") and hasattr(estimator, "fit")
        if not self.is_estimator and not callable(estimator):
            raise TuningError(
                "tune() needs an estimator or a function making one from the trial's "
                f"parameters, not {type(estimator).__name__}"
            )
        self.estimator = estimator
        name = getattr(estimator, "__qualname__", type(estimator).__name__)
        self.describe = f"estimator {name!r}" if self.is_estimator else f"factory {name!r}"

    def __call__(self, params: dict[str, Any]) -> Any:
        if self.is_estimator:
            return clone_estimator(self.estimator).set_params(**params)
        return self.estimator(**params)


class FitAndScore:
    """The objective of :func:`~ctloop.train.tune`: fit a trial's estimator in stages,
    score it, keep the best. Picklable (without what it kept), so that workers can run it.

    >>> objective = FitAndScore(make, X, y, scorer, stages=5, direction="maximize")  # doctest: +SKIP
    >>> optimize(objective, space).best_score == objective.kept()[1]  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        make: EstimatorMaker,
        X: Any,
        y: Any,
        scorer: ValidationScorer,
        stages: int,
        direction: str,
        trial_cores: int | None = None,
    ) -> None:
        self.make, self.X, self.y, self.scorer, self.stages = make, X, y, scorer, stages
        self.direction = direction
        self.trial_cores = trial_cores
        self._best = _BestSoFar(direction)

    def __call__(self, params: dict[str, Any], reporter: TrialReporter) -> float:
        fitted = self.make(params)
        # a worker's share of the CPUs, or this process's shared among its trial threads;
        # the model keeps the user's setting afterwards
        with held_threads(fitted, worker_threads() or self.trial_cores):
            scored = staged_fit(fitted, self.X, self.y, self.scorer, reporter, self.stages)
            score = self.scorer(fitted) if scored is None else scored
        self._best.offer(reporter.number, score, fitted)
        return score

    def kept(self) -> tuple[int, float, Any] | None:
        """``(trial number, score, fitted estimator)`` of the best trial run here."""
        return self._best.kept

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "_best"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._best = _BestSoFar(self.direction)
