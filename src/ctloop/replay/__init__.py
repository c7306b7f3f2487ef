"""Replaying a model's own history: retraining policies backtested on a simulated clock.

``ctloop replay`` serves a time-stamped table period by period (``--every``), with labels
arriving ``--label-delay`` late, through the user's training pipeline, ``Model.predict``,
the monitor's checks, each policy's trigger conditions and the gate, and compares the
model never retrained (static), each retraining policy, and fixed schedules (every ``k``
periods, and every phase of a schedule with as many retrains as each policy)::

    ctloop replay flights.parquet --pipeline train.py:training --time-column date \\
        --label late --every 1w --label-delay 1w --start 2013-03-05 \\
        --policy guarded --policy degraded --out replay.html

Policies are declared under ``retraining:`` in ``ctloop.yaml`` (see
:class:`ctloop.replay.Policy`).

>>> from ctloop.replay import Policy
>>> Policy.from_mapping("p", {"on": "degraded"}).on
('degraded',)
"""

from __future__ import annotations

from ctloop.replay._clock import Clock, Period
from ctloop.replay._engine import DEFAULT_SCHEDULES, run_replay
from ctloop.replay._lines import Line, ReplayResult, Retrain
from ctloop.replay._policy import BUILTIN_POLICIES, CONDITIONS, Policy, load_policies
from ctloop.replay._report import write_report
from ctloop.replay._trainers import TrainingWindow, trainer_for

__all__ = [
    "BUILTIN_POLICIES",
    "CONDITIONS",
    "DEFAULT_SCHEDULES",
    "Clock",
    "Line",
    "Period",
    "Policy",
    "ReplayResult",
    "Retrain",
    "TrainingWindow",
    "load_policies",
    "run_replay",
    "trainer_for",
    "write_report",
]
