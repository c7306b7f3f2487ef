"""A small window's sampling noise is no drift: the PSI threshold grows by the PSI that
two samples of the window's and the reference's sizes show when nothing changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctloop.data import compute_statistics
from ctloop.monitor import MonitorSettings
from ctloop.monitor._checks import feature_drift, psi_noise


def _stats(values: np.ndarray) -> object:
    return compute_statistics(pd.DataFrame({"x": values}))


def test_the_noise_term_shrinks_with_the_sample_sizes() -> None:
    assert psi_noise(2000, 200) == pytest.approx(9 * (1 / 2000 + 1 / 200))
    assert psi_noise(60000, 5000) < 0.002 < psi_noise(2000, 200) < 0.05
    assert psi_noise(0, 200) == pytest.approx(9 / 200)  # an empty side adds nothing


def test_windows_of_two_hundred_stable_rows_do_not_drift_and_a_shift_still_does() -> None:
    rng = np.random.default_rng(11)
    reference = _stats(rng.normal(size=840))
    settings = MonitorSettings()
    stable = [
        feature_drift(reference, _stats(rng.normal(size=210)), ["x"], settings) for _ in range(40)
    ]
    assert [r for r in stable if r.drifted_columns] == []
    scores = [r.columns[0].score for r in stable]
    assert max(scores) < 0.2 + psi_noise(840, 210)  # the raised threshold
    assert sum(s > 0.1 for s in scores) >= 1  # noise alone comes near the bare threshold
    shifted = feature_drift(reference, _stats(rng.normal(size=210) + 0.8), ["x"], settings)
    assert shifted.drifted_columns == ("x",)
    column = shifted.columns[0]
    assert column.threshold == pytest.approx(round(0.2 + psi_noise(840, 210), 4))
