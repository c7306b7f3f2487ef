"""The workspace a command reads and writes, opened once per command from the settings
(``ctloop.yaml``, ``CTLOOP_STORE_URL``, ``CTLOOP_ARTIFACT_URL``, else ``.ctloop/``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace


def open_workspace(settings: Settings | None = None, *, reconcile: bool = False) -> Workspace:
    """The workspace ``settings`` name (default: those of the working directory). With
    ``reconcile``, runs whose process died are marked failed first, so lists show them
    as they are.

    >>> open_workspace().store_url.startswith(("sqlite", "postgresql"))  # doctest: +SKIP
    True
    """
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace

    workspace = Workspace.from_settings(settings or Settings.load())
    if reconcile:
        from contextlib import suppress

        from ctloop.errors import AccessDeniedError
        from ctloop.pipeline._liveness import reconcile_stale_runs

        with suppress(AccessDeniedError):  # a viewer's key on a team server: runs as stored
            reconcile_stale_runs(workspace.metadata)
    return workspace
