"""Backtesting a training pipeline by rolling origin.

For each cut-off between ``--from`` and ``--to`` (every ``--every``), the pipeline trains
on the window before it (expanding, or sliding over a fixed length, with an optional
``--gap`` for labels that arrive late) and scores the next period; each fold is a run,
and a second, static line scores the first fold's model on every later period::

    ctloop backtest pipeline.py:training --from 2013-03 --to 2013-12 --every 1w \\
        --window sliding:8w --gap 1w

The pipeline takes ``train_start``, ``train_end``, ``test_start`` and ``test_end`` (ISO
dates, half-open periods) and logs its metrics on the test period; with ``--slice
carrier`` the report also shows the metric per carrier, read from the ``Evaluation`` of
each fold (``evaluate(..., slices=["carrier"])``). The report is HTML and JSON.
"""

from __future__ import annotations

from ctloop.backtest._backtest import PARAMETERS, BacktestResult, FoldResult, run_backtest
from ctloop.backtest._folds import (
    Fold,
    consecutive_periods,
    parse_period,
    parse_when,
    plan_folds,
)
from ctloop.backtest._report import metric_chart, slice_chart, write_report
from ctloop.backtest._slices import read_slices

__all__ = [
    "PARAMETERS",
    "BacktestResult",
    "Fold",
    "FoldResult",
    "consecutive_periods",
    "metric_chart",
    "parse_period",
    "parse_when",
    "plan_folds",
    "read_slices",
    "run_backtest",
    "slice_chart",
    "write_report",
]
