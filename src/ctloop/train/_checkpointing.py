"""Checkpoints of long training: the protocol, an in-memory store, boosting callbacks.

A :class:`CheckpointStore` is anything with ``save(state, step=N)`` and ``latest()``.
Inside a pipeline step, ``ctloop.checkpoint`` is one bound to the step (kept in the
artifact store, found again by ``ctloop resume``); :class:`MemoryCheckpoints` is the
in-process one for notebooks and tests.

XGBoost and LightGBM save their booster every ``every`` rounds through a callback; a
resumed fit loads the latest booster and trains only the remaining rounds
(:func:`fit_boosting_with_checkpoints`, used by :func:`ctloop.train.fit`).

>>> store = MemoryCheckpoints()
>>> store.latest() is None
True
>>> store.save({"epoch": 3, "loss": 0.25}, step=3)
>>> step, state = store.latest()
>>> step, state["loss"]
(3, 0.25)
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple, Protocol, runtime_checkable

from ctloop.errors import CheckpointError


class Checkpoint(NamedTuple):
    """A saved training state and the step (round, epoch) it was saved at."""

    step: int
    state: Any


@runtime_checkable
class CheckpointStore(Protocol):
    """Where training saves its progress.

    ``save`` must be atomic (a crash leaves the previous checkpoint readable);
    ``latest`` returns the newest checkpoint or ``None`` when there is none to resume.
    """

    def save(self, state: Any, *, step: int) -> None:
        """Keep ``state`` (a JSON-able dict, bytes or a file path) as of ``step``."""

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint, or ``None``."""


class MemoryCheckpoints:
    """Checkpoints kept in this process (the fake behind the protocol).

    >>> store = MemoryCheckpoints()
    >>> store.save(b"booster", step=10)
    >>> store.steps
    [10]
    """

    def __init__(self) -> None:
        self._saved: list[Checkpoint] = []
        self._lock = threading.Lock()

    def save(self, state: Any, *, step: int) -> None:
        """Keep ``state`` as of ``step``."""
        with self._lock:
            self._saved.append(Checkpoint(checked_step(step), state))

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint, or ``None``."""
        with self._lock:
            return self._saved[-1] if self._saved else None

    @property
    def steps(self) -> list[int]:
        """The steps saved so far, oldest first."""
        return [c.step for c in self._saved]


def checked_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(
            f"checkpoint step {step!r} ({type(step).__name__}) is not a whole number >= 0; "
            "pass the round or epoch just finished, e.g. save(state, step=epoch)"
        )
    return step


# -- boosting libraries ---------------------------------------------------------------


def boosting_library(estimator: Any) -> str | None:
    """``'xgboost'`` or ``'lightgbm'`` for their scikit-learn estimators (and subclasses of
    them), else ``None``.

    >>> from sklearn.linear_model import LinearRegression
    >>> boosting_library(LinearRegression()) is None
    True
    """
    for cls in type(estimator).__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("xgboost", "lightgbm"):
            return root
    return None


def xgboost_checkpoint_callback(
    store: CheckpointStore, *, every: int = 10, total: int | None = None
) -> Any:
    """An ``xgboost.callback.TrainingCallback`` saving the booster every ``every`` rounds.

    The checkpoint's step is the number of rounds in the booster (resumed rounds count);
    with ``total``, the final round is not saved (the finished model is the step's output).

    >>> XGBClassifier(callbacks=[xgboost_checkpoint_callback(store)])  # doctest: +SKIP
    """
    import xgboost

    class _SaveBooster(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            rounds = int(model.num_boosted_rounds())
            if rounds % every == 0 and (total is None or rounds < total):
                store.save(bytes(model.save_raw(raw_format="ubj")), step=rounds)
            return False

    return _SaveBooster()


def lightgbm_checkpoint_callback(
    store: CheckpointStore, *, every: int = 10, total: int | None = None
) -> Any:
    """A LightGBM callback saving ``booster.model_to_string()`` every ``every`` rounds
    (not the final round when ``total`` is given).

    >>> LGBMClassifier().fit(X, y, callbacks=[lightgbm_checkpoint_callback(store)])  # doctest: +SKIP
    """

    def _save_booster(env: Any) -> None:
        rounds = int(env.iteration) + 1  # absolute: iteration counts an init_model's rounds
        if rounds % every == 0 and (total is None or rounds < total):
            store.save(env.model.model_to_string().encode(), step=rounds)

    _save_booster.order = 40  # type: ignore[attr-defined]  # after LightGBM's own callbacks
    return _save_booster


def fit_boosting_with_checkpoints(
    estimator: Any, X: Any, y: Any, store: CheckpointStore, *, every: int = 10
) -> int:
    """Fit an XGBoost or LightGBM estimator, saving its booster every ``every`` rounds and
    resuming from ``store.latest()``; returns the round it started from (0 when fresh).

    The estimator's ``n_estimators`` is the total: a fit resumed at round 60 of 200
    trains the remaining 140.
    """
    library = boosting_library(estimator)
    if library is None:
        raise CheckpointError(
            f"checkpointed fitting needs an XGBoost or LightGBM estimator, not "
            f"{type(estimator).__name__}; save your own state with checkpoint.save in a loop"
        )
    total = int(estimator.get_params()["n_estimators"] or 100)
    found = store.latest()
    # the callbacks never save the final round, so a usable checkpoint is below the total
    usable = found is not None and 0 < found.step < total
    start = found.step if usable and found is not None else 0
    booster = _load_booster(library, found.state) if usable and found is not None else None
    estimator.set_params(n_estimators=total - start)
    try:
        if library == "xgboost":
            _fit_xgboost(estimator, X, y, store, every, total, booster)
        else:
            _fit_lightgbm(estimator, X, y, store, every, total, booster)
    finally:
        estimator.set_params(n_estimators=total)
    return start


def _load_booster(library: str, state: Any) -> Any:
    if not isinstance(state, bytes | bytearray):
        raise CheckpointError(
            f"the latest {library} checkpoint holds a {type(state).__name__}, not the booster "
            "bytes the checkpoint callback saves; clear the step's checkpoints and run again"
        )
    if library == "xgboost":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(state))
        return booster
    import lightgbm

    return lightgbm.Booster(model_str=bytes(state).decode())


def _fit_xgboost(
    estimator: Any, X: Any, y: Any, store: Any, every: int, total: int, booster: Any
) -> None:
    previous = estimator.get_params().get("callbacks")
    saver = xgboost_checkpoint_callback(store, every=every, total=total)
    callbacks = [*(previous or []), saver]
    estimator.set_params(callbacks=callbacks)
    try:
        estimator.fit(X, y, xgb_model=booster, verbose=False)
    finally:
        estimator.set_params(callbacks=previous)  # a saved model keeps no callback


def _fit_lightgbm(
    estimator: Any, X: Any, y: Any, store: Any, every: int, total: int, booster: Any
) -> None:
    saver = lightgbm_checkpoint_callback(store, every=every, total=total)
    estimator.fit(X, y, init_model=booster, callbacks=[saver])
