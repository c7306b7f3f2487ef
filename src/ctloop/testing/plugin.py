"""The pytest plugin of ``ctloop.testing``: add ``pytest_plugins = ["ctloop.testing.plugin"]``
to a project's ``conftest.py`` for its fixtures and the ``ctloop`` marker.

Fixtures:
- ``ctloop_workspace``: an in-memory workspace (runs, artifacts, registry), closed after the test.
- ``ctloop_serve``: ``ctloop_serve(model, name="churn")`` serves a model on 127.0.0.1 for
  the rest of the test and returns its :class:`~ctloop.testing.ServedModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace
    from ctloop.testing import ServedModel

__all__ = ["ctloop_serve", "ctloop_workspace", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``ctloop`` marker (``-m ctloop`` runs data, model and service tests)."""
    config.addinivalue_line("markers", "ctloop(kind): a ctloop data, model or service test")


@pytest.fixture
def ctloop_workspace() -> Iterator[Workspace]:
    """An in-memory workspace, closed after the test."""
    from ctloop.store.workspace import Workspace

    with Workspace.in_memory() as workspace:
        yield workspace


@pytest.fixture
def ctloop_serve() -> Iterator[Callable[..., ServedModel]]:
    """A function that serves a model until the test ends: ``ctloop_serve(model, name=...)``."""
    from ctloop.testing import serve_model

    with ExitStack() as stack:

        def start(model: Any, *, name: str = "model") -> ServedModel:
            return stack.enter_context(serve_model(model, name=name))

        yield start
