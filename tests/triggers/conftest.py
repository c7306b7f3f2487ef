"""A private ctloop home, working directory and ``ctloop.yaml`` for trigger tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctloop.config import Settings
from ctloop.store.workspace import Workspace
from ctloop.triggers import Scheduler, load_specs

PIPELINES = Path(__file__).resolve().parent / "pipelines.py"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Project:
    """A working directory with its own store; ``configure`` writes ``ctloop.yaml``."""

    root: Path
    env: dict[str, str]
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def configure(self, pipelines: dict[str, Any]) -> None:
        (self.root / "ctloop.yaml").write_text(yaml.safe_dump({"pipelines": pipelines}))

    def scheduler(self, **kwargs: Any) -> Scheduler:
        settings = Settings.load(self.root)
        workspace = Workspace.from_settings(settings)
        return Scheduler(load_specs(settings), workspace, settings=settings, **kwargs)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "ctloop", *args],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ctloop {args} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ctloop", *args],
            cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.started.append(proc)
        return proc

    def reap(self) -> None:
        """Kill what :meth:`popen` started and is still running (a failed test's)."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    @property
    def calls(self) -> list[str]:
        path = Path(self.env["CALLS_FILE"])
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    for key in [k for k in os.environ if k.startswith("CTLOOP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CALLS_FILE", str(tmp_path / "calls.txt"))
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    project = Project(root, dict(os.environ))
    yield project
    project.reap()


def eventually(condition: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")
