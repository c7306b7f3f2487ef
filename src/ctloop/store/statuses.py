"""Every status a stored record can have, in one place.

A run, an execution (one step of a run), a trigger firing and an alert's delivery to a
sink each carry a status. They are :class:`enum.StrEnum` members, so a member *is* its
string: it is stored in the database and written to JSON as the same word, and a record
read back with a plain string compares equal to the member.

>>> RunStatus.SUCCEEDED == "succeeded"
True
>>> ExecutionStatus("cached") in ExecutionStatus.done()
True
>>> sorted(FiringStatus.active())
[<FiringStatus.CLAIMED: 'claimed'>, <FiringStatus.RUNNING: 'running'>]
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DeliveryStatus", "ExecutionStatus", "FiringStatus", "RunStatus"]


class RunStatus(StrEnum):
    """The status of a pipeline run.

    - ``RUNNING``: the run's process is executing its steps (or died without saying so;
      a run whose heartbeat stopped is marked failed by the next process that looks).
    - ``SUCCEEDED``: every step succeeded or was reused from the cache.
    - ``FAILED``: a step failed, or the run was interrupted or its process died.

    >>> RunStatus.FAILED in RunStatus.finished()
    True
    """

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def finished(cls) -> frozenset[RunStatus]:
        """The statuses of a run that has ended: succeeded or failed."""
        return frozenset({cls.SUCCEEDED, cls.FAILED})


class ExecutionStatus(StrEnum):
    """The status of one execution: one attempt at one step of a run.

    - ``PENDING``: recorded, not started yet.
    - ``RUNNING``: the step's function is running.
    - ``SUCCEEDED``: the function returned and its outputs are stored.
    - ``FAILED``: the function raised, or its worker or the run's process died.
    - ``CACHED``: not run; the outputs of an earlier execution with the same cache key
      are reused (``cached_from`` names it).
    - ``SKIPPED``: not run, because a step it depends on failed or was skipped.

    >>> ExecutionStatus.SKIPPED in ExecutionStatus.without_outputs()
    True
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CACHED = "cached"
    SKIPPED = "skipped"

    @classmethod
    def done(cls) -> frozenset[ExecutionStatus]:
        """Executions whose outputs are complete and reusable: succeeded or cached."""
        return frozenset({cls.SUCCEEDED, cls.CACHED})

    @classmethod
    def unfinished(cls) -> frozenset[ExecutionStatus]:
        """Executions that have not ended: pending or running (a dead process leaves
        them so, and whoever finds it marks them failed)."""
        return frozenset({cls.PENDING, cls.RUNNING})

    @classmethod
    def without_outputs(cls) -> frozenset[ExecutionStatus]:
        """Executions that ended without outputs, so the steps downstream of them are
        skipped: failed or skipped."""
        return frozenset({cls.FAILED, cls.SKIPPED})


class FiringStatus(StrEnum):
    """The status of one firing of a trigger.

    - ``CLAIMED``: the occasion is claimed and the run is being launched.
    - ``RUNNING``: the run the firing started is running.
    - ``SUCCEEDED``: that run succeeded.
    - ``FAILED``: that run failed, or it could not be launched.
    - ``SKIPPED``: an occasion passed over, because the trigger was busy.
    - ``LOST``: the firing's process died before it could record an outcome.

    >>> FiringStatus.LOST in FiringStatus.unsuccessful()
    True
    """

    CLAIMED = "claimed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    LOST = "lost"

    @classmethod
    def active(cls) -> frozenset[FiringStatus]:
        """Firings that hold one of the trigger's ``max_concurrent`` slots: claimed
        (launching) and running."""
        return frozenset({cls.CLAIMED, cls.RUNNING})

    @classmethod
    def unsuccessful(cls) -> frozenset[FiringStatus]:
        """Firings whose run did not succeed: failed or lost."""
        return frozenset({cls.FAILED, cls.LOST})


class DeliveryStatus(StrEnum):
    """The status of an alert's delivery to one sink.

    - ``PENDING``: not delivered yet; it is tried (again) after its backoff.
    - ``SENT``: the sink accepted the alert.
    - ``FAILED``: every attempt failed (``alerts.max_attempts`` of them); no more tries.

    >>> DeliveryStatus("sent") is DeliveryStatus.SENT
    True
    """

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
