"""Every command against a team server: a real ``ctloop server`` process on 127.0.0.1,
a key from ``ctloop server bootstrap``, and the CLI run elsewhere with
``CTLOOP_SERVER``/``CTLOOP_TOKEN`` set, recording into the server's own store."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ctloop.store.workspace import Workspace
from tests.cli.conftest import REPO, SAMPLES, Cli
from tests.fixtures.s3 import free_port

REGRESSION = f"{SAMPLES}:regression"


@dataclass
class Server:
    url: str
    admin_key: str
    home: Path

    def workspace(self) -> Workspace:
        url = f"sqlite:///{self.home / 'metadata.db'}"
        return Workspace.open(url, artifacts=str(self.home / "artifacts"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ctloop server`` in its own folder and home, with a bootstrapped admin key (one
    for the module: starting it is most of a test's time)."""
    folder = tmp_path_factory.mktemp("server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {"CTLOOP_HOME": str(folder / "home"), "PYTHONPATH": str(REPO)}
    here = Cli(folder, env)
    admin_key = here("server", "bootstrap").stdout.strip()
    port = free_port()
    process = here.popen("server", "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/openapi.json", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ctloop server did not start: {process.communicate()}")
            time.sleep(0.1)
        yield Server(url, admin_key, folder / "home")
    finally:
        process.terminate()
        process.communicate(timeout=30)


def remote(cli: Cli, server: Server, token: str) -> Cli:
    """The CLI in its own folder, on the server with ``token``."""
    return Cli(cli.cwd, {**cli.env, "CTLOOP_SERVER": server.url, "CTLOOP_TOKEN": token})


def test_a_pipeline_runs_here_and_records_into_the_server(
    cli: Cli, server: Server, data_csv: Path
) -> None:
    admin = remote(cli, server, server.admin_key)
    created = admin("keys", "create", "--name", "ci", "--role", "editor")
    editor = remote(cli, server, created.stdout.strip())

    run = json.loads(editor("run", REGRESSION, "-p", f"path={data_csv}", "--json").stdout)
    assert run["status"] == "succeeded"
    runs = json.loads(editor("runs", "list", "--json").stdout)
    assert [r["id"] for r in runs] == [run["run_id"]]
    shown = json.loads(editor("runs", "show", run["run_id"][:8], "--json").stdout)
    coef = {x["step"]: x for x in shown["executions"]}["fit"]["outputs"]["output"]
    assert f"loading {data_csv}" in editor("runs", "logs", run["run_id"][:8], "load").stdout
    assert not (cli.cwd / "home" / "metadata.db").exists()  # nothing recorded here

    with server.workspace() as behind:  # the server's own store holds the run and its bytes
        assert behind.metadata.get_run(run["run_id"]).status == "succeeded"
        artifact = behind.metadata.get_artifact(coef)
        assert behind.artifacts.has(artifact.digest)
        assert artifact.uri == behind.artifacts.blob_uri(artifact.digest)
        audited = {e.action for e in behind.audit.list(actor="ci", limit=1000)}
        assert {"metadata.create_run", "artifacts.put_file"} <= audited

    editor("models", "register", "flights", coef[:10])
    editor("models", "alias", "flights", "challenger", "1")
    refused = editor("models", "alias", "flights", "champion", "1", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"the ctloop server at {server.url} refused" in refused.stderr
    assert "production alias 'champion'" in refused.stderr
    admin("models", "alias", "flights", "champion", "1")
    history = json.loads(editor("models", "history", "flights", "--json").stdout)
    assert {m["alias"] for m in history} == {"challenger", "champion"}


def test_a_refused_or_missing_server_is_one_sentence(cli: Cli, server: Server) -> None:
    revoked = remote(cli, server, "ctl_" + "x" * 40)("runs", "list", check=False)
    assert revoked.returncode == 1 and "Traceback" not in revoked.stderr
    assert f"the ctloop server at {server.url} refused the token" in revoked.stderr

    gone = f"http://127.0.0.1:{free_port()}"
    env = {**cli.env, "CTLOOP_SERVER": gone, "CTLOOP_TOKEN": server.admin_key}
    answer = Cli(cli.cwd, env)("runs", "list", check=False)
    assert answer.returncode == 1
    assert answer.stderr.strip().startswith(f"error: the ctloop server at {gone} cannot be")
    assert "Traceback" not in answer.stderr and len(answer.stderr.strip().splitlines()) <= 3


def test_the_server_serves_its_own_store_even_with_ctloop_server_set(
    cli: Cli, tmp_path: Path
) -> None:
    env = {**cli.env, "CTLOOP_SERVER": f"http://127.0.0.1:{free_port()}"}
    key = Cli(cli.cwd, env)("server", "bootstrap").stdout.strip()
    assert key.startswith("ctl_")
    assert (cli.cwd / "home" / "metadata.db").exists()  # here, not on the named server
