"""The ``ctloop server`` and ``ctloop keys`` commands, run as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctloop.store.workspace import Workspace


def ctloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the ``ctloop`` command in ``cwd`` (its own ``.ctloop/`` workspace)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    command = [sys.executable, "-m", "ctloop", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_no_auth_off_loopback_refuses_to_start_with_a_sentence(tmp_path: Path, host: str) -> None:
    result = ctloop("server", "--no-auth", "--host", host, "--port", "0", cwd=tmp_path)
    assert result.returncode != 0
    assert f"refusing to serve without auth on {host}" in result.stderr
    assert "--host 127.0.0.1" in result.stderr


def test_bootstrap_prints_one_admin_key_once_and_keys_are_created_listed_revoked(
    tmp_path: Path,
) -> None:
    first = ctloop("server", "bootstrap", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    secret = first.stdout.strip()
    assert secret.startswith("ctl_") and "shown once" in first.stderr
    again = ctloop("server", "bootstrap", cwd=tmp_path)
    assert again.returncode != 0 and "an admin key exists already" in again.stderr
    assert ctloop("server", "bootstrap", "--force", cwd=tmp_path).returncode == 0
    ci = ctloop(
        "keys", "create", "--name", "ci", "--role", "editor", "--expires", "90d", cwd=tmp_path
    )
    assert ci.returncode == 0 and ci.stdout.startswith("ctl_"), ci.stderr
    bad = ctloop("keys", "create", "--name", "x", "--expires", "soon", cwd=tmp_path)
    assert bad.returncode != 0 and "'soon' is not a duration" in bad.stderr
    listed = ctloop("keys", "list", "--json", cwd=tmp_path)
    assert secret not in listed.stdout and ci.stdout.strip() not in listed.stdout
    workspace = Workspace.open(
        f"sqlite:///{tmp_path / '.ctloop' / 'metadata.db'}",
        artifacts=str(tmp_path / ".ctloop" / "artifacts"),
    )
    with workspace:
        keys = {k.name: k for k in workspace.keys.list()}
        assert keys["ci"].role == "editor" and keys["ci"].expires_at is not None
        found = workspace.keys.find(secret)
        assert found is not None and found.role == "admin"
        revoked = ctloop("keys", "revoke", keys["ci"].id, cwd=tmp_path)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert workspace.keys.get(keys["ci"].id).revoked_at is not None
    assert ctloop("keys", "revoke", "nope", cwd=tmp_path).returncode != 0


def test_ctloop_server_serves_the_workspace_with_keys(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    secret = ctloop("server", "bootstrap", cwd=tmp_path).stdout.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    command = [sys.executable, "-m", "ctloop", "server", "--port", str(port)]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/api/v1/runs"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                anonymous = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert anonymous.status_code == 401
        answer = httpx.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=5)
        assert answer.json() == {"items": [], "next_cursor": None}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert secret not in stderr and f"127.0.0.1:{port}/api/v1" in stderr
