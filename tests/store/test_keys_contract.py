"""API keys and the audit log on SQLite, PostgreSQL and in memory: one contract each.

:class:`KeyStoreContract` and :class:`AuditLogContract` hold the tests; each backend's
class provides ``workspace``, a fresh, empty one per test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from ctloop.errors import NotFoundError
from ctloop.store._audit import AuditDraft
from ctloop.store._keys import KEY_PREFIX, Role, hash_key
from ctloop.store.records import utcnow
from ctloop.store.workspace import Workspace
from tests.store._workspaces import (
    MemoryWorkspace,
    PostgresWorkspace,
    RemoteWorkspace,
    SqliteWorkspace,
)


class KeyStoreContract:
    """Tests every key store passes."""

    @pytest.fixture
    def workspace(self) -> Iterator[Workspace]:
        raise NotImplementedError

    def test_a_created_key_is_found_by_its_secret_only(self, workspace: Workspace) -> None:
        created = workspace.keys.create("ci", Role.EDITOR, created_by="ana")
        record = created.record
        assert created.secret.startswith(KEY_PREFIX) and len(created.secret) > 40
        assert created.secret.startswith(record.prefix) and len(record.prefix) < 16
        assert (record.name, record.role, record.created_by) == ("ci", "editor", "ana")
        assert workspace.keys.find(created.secret) == record == workspace.keys.get(record.id)
        assert workspace.keys.find(created.secret + "x") is None
        assert workspace.keys.find(hash_key(created.secret)) is None
        assert created.secret not in repr(created) and created.secret not in repr(record)

    def test_keys_are_listed_oldest_first_with_distinct_ids_and_secrets(
        self, workspace: Workspace
    ) -> None:
        made = [workspace.keys.create(f"k{i}", Role.VIEWER) for i in range(5)]
        listed = workspace.keys.list()
        assert [k.name for k in listed] == [f"k{i}" for i in range(5)]
        assert len({k.id for k in listed}) == 5 == len({m.secret for m in made})

    def test_revoking_keeps_the_first_time_and_refuses_the_key(self, workspace: Workspace) -> None:
        created = workspace.keys.create("old", Role.ADMIN)
        assert created.record.refusal() is None
        revoked = workspace.keys.revoke(created.record.id)
        assert revoked.revoked_at is not None
        assert workspace.keys.revoke(created.record.id).revoked_at == revoked.revoked_at
        found = workspace.keys.find(created.secret)
        assert found is not None and "revoked" in (found.refusal() or "")
        assert not workspace.keys.has_admin()

    def test_an_expired_key_is_refused_and_is_no_admin(self, workspace: Workspace) -> None:
        past = utcnow() - timedelta(minutes=1)
        created = workspace.keys.create("gone", Role.ADMIN, expires_at=past)
        assert "expired" in (created.record.refusal() or "")
        assert not workspace.keys.has_admin()
        future = workspace.keys.create("live", Role.ADMIN, expires_at=utcnow() + timedelta(days=1))
        assert future.record.refusal() is None and workspace.keys.has_admin()
        assert future.record.expires_at is not None
        assert "expired" in (future.record.refusal(utcnow() + timedelta(days=2)) or "")

    def test_touch_moves_last_used_forward_only(self, workspace: Workspace) -> None:
        key_id = workspace.keys.create("ci", Role.VIEWER).record.id
        now = utcnow()
        workspace.keys.touch(key_id, now)
        workspace.keys.touch(key_id, now - timedelta(hours=1))
        assert workspace.keys.get(key_id).last_used_at == now
        workspace.keys.touch("no-such-key", now)  # ignored

    def test_unknown_ids_and_roles_are_refused_with_their_names(self, workspace: Workspace) -> None:
        with pytest.raises(NotFoundError, match=r"'nope'.*ctloop keys list"):
            workspace.keys.get("nope")
        with pytest.raises(NotFoundError, match="'nope'"):
            workspace.keys.revoke("nope")
        with pytest.raises(ValueError, match="role 'owner' is unknown; use one of viewer"):
            workspace.keys.create("x", "owner")
        assert workspace.keys.list() == []


class AuditLogContract:
    """Tests every audit log passes."""

    @pytest.fixture
    def workspace(self) -> Iterator[Workspace]:
        raise NotImplementedError

    def test_entries_come_back_newest_first_with_everything_recorded(
        self, workspace: Workspace
    ) -> None:
        before = utcnow()
        first = workspace.audit.append(
            AuditDraft(
                "ci",
                "alias.set",
                "flights@champion",
                key_id="k1",
                detail={"version": 3},
                remote="127.0.0.1",
                status=200,
            )
        )
        workspace.audit.append(AuditDraft("ana", "tag.set", "run r1", status=404))
        entries = workspace.audit.list()
        assert [e.action for e in entries] == ["tag.set", "alias.set"]
        assert entries[1] == first and first.at >= before
        assert (first.key_id, first.remote, first.detail, first.status) == (
            "k1",
            "127.0.0.1",
            {"version": 3},
            200,
        )
        assert entries[0].key_id is None and entries[0].status == 404

    def test_pages_walk_every_entry_once_and_filters_apply(self, workspace: Workspace) -> None:
        for i in range(25):
            action = "tag.set" if i % 2 else "alias.set"
            workspace.audit.append(AuditDraft(f"actor{i % 3}", action, f"o{i}"))
        seen: list[str] = []
        before: int | None = None
        while page := workspace.audit.list(limit=10, before=before):
            seen += [e.object for e in page]
            before = page[-1].id
        assert seen == [f"o{i}" for i in reversed(range(25))]
        assert len(workspace.audit.list(action="tag.set", limit=1000)) == 12
        assert {e.actor for e in workspace.audit.list(actor="actor1")} == {"actor1"}
        assert workspace.audit.list(action="nothing") == []
        with pytest.raises(ValueError, match="limit 0"):
            workspace.audit.list(limit=0)

    def test_concurrent_appends_lose_nothing(self, workspace: Workspace) -> None:
        def write(worker: int) -> None:
            for i in range(10):
                workspace.audit.append(AuditDraft(f"w{worker}", "tag.set", f"{worker}-{i}"))

        threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        entries = workspace.audit.list(limit=1000)
        assert len({e.id for e in entries}) == 40 == len({e.object for e in entries})


class Contracts(KeyStoreContract, AuditLogContract):
    """Both contracts, for one backend."""


class TestSqliteKeysAndAudit(SqliteWorkspace, Contracts):
    """On a SQLite file (the default)."""


class TestPostgresKeysAndAudit(PostgresWorkspace, Contracts):
    """On a real PostgreSQL server."""


class TestMemoryKeysAndAudit(MemoryWorkspace, Contracts):
    """In memory (:meth:`Workspace.in_memory`)."""


class TestRemoteKeysAndAudit(RemoteWorkspace, Contracts):
    """Over HTTP, through a live ``ctloop server`` on a fresh SQLite workspace."""
