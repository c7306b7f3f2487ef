"""The base of the loggers that write to a workspace's logs: the prediction log and
the feedback log share their writer, its staging folder and its dead-letter files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

from ctloop.artifacts._logs import LogWriter
from ctloop.serve._batch_log import BatchLogger, BatchOptions

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["StoreLogger"]


class StoreLogger(BatchLogger):
    """A :class:`~ctloop.serve._batch_log.BatchLogger` of ``model`` (``None``: any
    model) writing through one :class:`~ctloop.artifacts._logs.LogWriter` of
    ``workspace``, its thread named ``ctloop-<log>-<model>``."""

    def __init__(
        self, workspace: Workspace, model: str | None, log: str, **options: Unpack[BatchOptions]
    ) -> None:
        self.model = model
        self._writer = LogWriter(workspace)
        super().__init__(thread_name=f"ctloop-{log}-{model or 'any'}", **options)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued, stop the thread, remove the staging folder."""
        done = super().close(timeout)
        if done:
            self._writer.cleanup()
        return done
