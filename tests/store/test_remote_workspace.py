"""A remote workspace with API keys: each role's calls over the protocol, and the
sentences a refused or unreachable client gets (the contract suites run without keys).

Every test here puts a fresh SQLite workspace with keys behind the session's live
``ctloop server`` (tests/fixtures/ctloop_server.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ctloop.config import Settings
from ctloop.errors import AccessDeniedError, ConfigError, NotFoundError, StoreUnavailableError
from ctloop.server._auth import CACHE_S
from ctloop.store._keys import Role
from ctloop.store.workspace import Workspace
from tests.fixtures.ctloop_server import LiveServer
from tests.fixtures.s3 import free_port
from tests.store.test_metadata_contract import make_artifact, make_run


@pytest.fixture
def keyed(live_server: LiveServer, served_workspace: Workspace) -> Workspace:
    """The served workspace, now with API keys required."""
    live_server.serve(served_workspace, auth=True)
    return served_workspace


def client(live_server: LiveServer, keyed: Workspace, role: Role) -> Workspace:
    secret = keyed.keys.create(f"the-{role}", role).secret
    return Workspace.remote(live_server.url, token=secret)


@pytest.fixture
def viewer(live_server: LiveServer, keyed: Workspace) -> Iterator[Workspace]:
    with client(live_server, keyed, Role.VIEWER) as workspace:
        yield workspace


@pytest.fixture
def editor(live_server: LiveServer, keyed: Workspace) -> Iterator[Workspace]:
    with client(live_server, keyed, Role.EDITOR) as workspace:
        yield workspace


@pytest.fixture
def admin(live_server: LiveServer, keyed: Workspace) -> Iterator[Workspace]:
    with client(live_server, keyed, Role.ADMIN) as workspace:
        yield workspace


def test_no_token_is_refused_naming_the_server(live_server: LiveServer, keyed: Workspace) -> None:
    anonymous = Workspace.remote(live_server.url)
    with anonymous, pytest.raises(AccessDeniedError, match=f"{live_server.url}.*needs an API key"):
        anonymous.metadata.list_runs()


def test_an_unknown_or_revoked_key_is_refused(live_server: LiveServer, keyed: Workspace) -> None:
    created = keyed.keys.create("ci", Role.EDITOR)
    with Workspace.remote(live_server.url, token=created.secret) as ci:
        assert ci.metadata.list_runs() == []
        keyed.keys.revoke(created.record.id)  # in the store, not through the server
        deadline = time.monotonic() + CACHE_S + 3.0
        with pytest.raises(AccessDeniedError, match=f"{live_server.url}.*revoked"):
            while time.monotonic() < deadline:  # the server may trust its cache for CACHE_S
                ci.metadata.list_runs()
                time.sleep(0.2)
    stranger = Workspace.remote(live_server.url, token="ctl_" + "x" * 40)
    with stranger, pytest.raises(AccessDeniedError, match="not known to this server"):
        stranger.metadata.list_runs()


def test_a_viewer_reads_and_is_refused_writes(
    viewer: Workspace, editor: Workspace, keyed: Workspace
) -> None:
    run = make_run()
    editor.metadata.create_run(run)
    assert viewer.metadata.get_run(run.id) == run
    with pytest.raises(
        AccessDeniedError, match=re.escape("metadata.create_run needs the editor role")
    ):
        viewer.metadata.create_run(make_run())
    with pytest.raises(AccessDeniedError, match="needs the editor role"):
        viewer.artifacts.put_bytes(b"bytes")
    assert [r.id for r in keyed.metadata.list_runs()] == [run.id]
    refused = keyed.audit.list(action="refused")
    assert [(e.actor, e.object, e.status) for e in refused][-1] == (
        "the-viewer",
        "metadata.create_run",
        403,
    )


def test_an_editor_writes_but_admin_calls_are_refused(editor: Workspace) -> None:
    run = make_run()
    editor.metadata.create_run(run)
    with pytest.raises(
        AccessDeniedError, match=re.escape("metadata.delete_runs needs the admin role")
    ):
        editor.metadata.delete_runs([run.id])
    with pytest.raises(AccessDeniedError, match=re.escape("keys.list needs the admin role")):
        editor.keys.list()
    with pytest.raises(
        AccessDeniedError, match=re.escape("deployments.record needs the admin role")
    ):
        editor.deployments.record(name="f", model="f", action="deploy", state={}, reason="")
    with pytest.raises(AccessDeniedError, match=re.escape("audit.list needs the admin role")):
        editor.audit.list()


def test_production_aliases_are_an_admins_to_move(editor: Workspace, admin: Workspace) -> None:
    artifact = make_artifact(type="Model")
    editor.metadata.put_artifacts([artifact])
    editor.registry.register_version("flights", artifact.id)
    assert editor.registry.set_alias("flights", "challenger", 1) is not None
    with pytest.raises(AccessDeniedError, match="production alias 'champion'"):
        editor.registry.set_alias("flights", "champion", 1)
    with pytest.raises(AccessDeniedError, match="production alias 'champion'"):
        editor.registry.set_alias(model="flights", alias="champion", version=1)
    assert admin.registry.set_alias("flights", "champion", 1) is not None
    assert editor.registry.get_by_alias("flights", "champion").version == 1


def test_every_write_is_audited_with_the_key_and_the_call(
    editor: Workspace, keyed: Workspace
) -> None:
    run = make_run()
    editor.metadata.create_run(run)
    digest = editor.artifacts.put_bytes(b"some bytes")
    entries = {e.action: e for e in keyed.audit.list(actor="the-editor")}
    assert entries["metadata.create_run"].detail["args"] == [run.id]
    assert entries["artifacts.put_file"].object == f"blob {digest}"
    assert entries["artifacts.put_file"].remote.startswith("127.0.0.1")
    assert "metadata.list_runs" not in entries  # reads are not writes


def test_an_unreachable_server_is_named_with_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    workspace = Workspace.remote(url)
    with workspace, pytest.raises(StoreUnavailableError, match=f"{url} cannot be reached"):
        workspace.metadata.list_runs()


def test_a_store_error_comes_back_as_its_class_and_sentence(remote_workspace: Workspace) -> None:
    with pytest.raises(NotFoundError, match="no-such-run"):
        remote_workspace.metadata.get_run("no-such-run")
    with pytest.raises(ValueError, match="colour"):
        run = make_run()
        remote_workspace.metadata.create_run(run)
        remote_workspace.metadata.update_run(run.id, colour="red")


def test_the_protocol_refuses_unknown_calls_and_foreign_types(live_server: LiveServer) -> None:
    base = f"{live_server.url}/api/v1/workspace"
    unknown = httpx.post(f"{base}/metadata/drop_everything", json={"args": [], "kwargs": {}})
    assert unknown.status_code == 404 and "no method 'drop_everything'" in unknown.json()["error"]
    assert httpx.post(f"{base}/engine/run", json={}).status_code == 404
    foreign = {"args": [{"$r": "os:system", "v": {}}], "kwargs": {}}
    answer = httpx.post(f"{base}/metadata/create_run", json=foreign)
    assert answer.status_code == 400 and "not one of ctloop.store's records" in answer.text
    private = httpx.post(f"{base}/metadata/_engine", json={"args": [], "kwargs": {}})
    assert private.status_code == 404


def test_a_private_hook_is_no_call_of_the_protocol(
    live_server: LiveServer, remote_workspace: Workspace
) -> None:
    """The hooks behind a public method take what it checked: only the public one travels."""
    base = f"{live_server.url}/api/v1/workspace"
    for store, hook in (("metadata", "_finish_execution"), ("logs", "_add_batch")):
        answer = httpx.post(f"{base}/{store}/{hook}", json={"args": [], "kwargs": {}})
        assert answer.status_code == 404, (store, hook)
    with pytest.raises(NotImplementedError, match="_finish_execution is a step of"):
        remote_workspace.metadata._finish_execution("x", {}, None)  # type: ignore[arg-type]


def test_a_blob_download_refuses_a_path_outside_the_store(live_server: LiveServer) -> None:
    answer = httpx.get(f"{live_server.url}/api/v1/workspace/artifacts/blobs/..%2F..%2Fetc")
    assert answer.status_code in (404, 409)
    assert "sha256" in answer.json()["error"] or answer.status_code == 404


def test_open_and_settings_choose_the_server(
    live_server: LiveServer,
    served_workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CTLOOP_SERVER", raising=False)
    (tmp_path / "ctloop.yaml").write_text(f"server: {live_server.url}/\n")
    with Workspace.open() as workspace:
        assert workspace.location == f"the ctloop server at {live_server.url}"
        workspace.metadata.create_run(run := make_run())
    assert served_workspace.metadata.get_run(run.id) == run
    with Workspace.open(live_server.url) as workspace:
        assert workspace.metadata.get_run(run.id) == run
    monkeypatch.setenv("CTLOOP_SERVER", "ctloop.example.internal")
    with pytest.raises(
        ConfigError, match=re.escape("CTLOOP_SERVER: server 'ctloop.example.internal'")
    ):
        Settings.load()
