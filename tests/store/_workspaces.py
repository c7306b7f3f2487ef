"""The backends a contract suite runs on: mix one in before the contract class, and it
provides ``workspace``, a fresh, empty workspace per test.

    class TestSqliteApprovals(SqliteWorkspace, ApprovalStoreContract):
        \"\"\"On a SQLite file (the default).\"\"\"
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctloop.store.workspace import Workspace


class SqliteWorkspace:
    """A workspace on a SQLite file and a local artifact folder."""

    @pytest.fixture
    def workspace(self, tmp_path: Path) -> Iterator[Workspace]:
        url = f"sqlite:///{tmp_path / 'metadata.db'}"
        with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as workspace:
            yield workspace


class PostgresWorkspace:
    """A workspace on a fresh database of the real PostgreSQL server."""

    @pytest.fixture
    def workspace(self, fresh_postgres_url: str, tmp_path: Path) -> Iterator[Workspace]:
        artifacts = str(tmp_path / "artifacts")
        with Workspace.open(fresh_postgres_url, artifacts=artifacts) as workspace:
            yield workspace


class MemoryWorkspace:
    """A workspace in memory (:meth:`Workspace.in_memory`)."""

    @pytest.fixture
    def workspace(self) -> Iterator[Workspace]:
        with Workspace.in_memory() as workspace:
            yield workspace


class RemoteWorkspace:
    """A workspace over HTTP, through a live ``ctloop server`` on a fresh SQLite one."""

    @pytest.fixture
    def workspace(self, remote_workspace: Workspace) -> Iterator[Workspace]:
        yield remote_workspace
