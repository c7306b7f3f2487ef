"""``ctloop serve --workers 2`` as a real process on 127.0.0.1: uvicorn's supervisor
starts two worker processes that each load the model (the supervisor does not), with
their native thread pools limited to their share of the cores; each worker listens on a
socket of its own (``SO_REUSEPORT``), so connections are spread over both; and the
prediction logs both workers write into one workspace hold every request exactly once."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest

from ctloop.artifacts._logs import read_predictions
from ctloop.serve._server import native_thread_limits
from ctloop.store.workspace import Workspace
from tests.serve import _models
from tests.serve._process import Process, serve_process, workspace_urls

ROW = {"x": 0.3, "n": 2, "color": "red", "flag": True}
WORKERS = 2


def register_champion(tmp: Path) -> None:
    store_url, artifacts = workspace_urls(tmp)
    with Workspace.open(store_url, artifacts=artifacts) as workspace:
        version = _models.register(workspace, "flights", _models.classifier(), tmp)
        workspace.registry.set_alias("flights", "champion", version)


@contextlib.contextmanager
def two_workers(tmp: Path, *options: str) -> Iterator[tuple[Process, list[int]]]:
    """The server and its worker processes' ids, once both workers have started."""
    register_champion(tmp)
    args = ("--workers", str(WORKERS), "--poll-seconds", "0", *options)
    with serve_process(tmp, "flights@champion", *args) as process:
        deadline = time.monotonic() + 90
        while process.log.read_text().count("Application startup complete") < WORKERS:
            assert time.monotonic() < deadline, process.log.read_text()
            time.sleep(0.2)
        yield process, worker_pids(process.pid)


def worker_pids(supervisor: int) -> list[int]:
    """The supervisor's children that serve (not multiprocessing's resource tracker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
            if parent == supervisor and b"spawn_main" in command:
                pids.append(int(entry))
    return sorted(pids)


def environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def loaded_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def connections_per_worker(port: int, pids: list[int]) -> list[int]:
    """How many established connections to ``port`` each of ``pids`` holds."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(f"socket:[{fields[9]}]")
    counts = []
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        held = 0
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                held += os.readlink(fd) in established
        counts.append(held)
    return counts


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, list[int]]]:
    tmp = tmp_path_factory.mktemp("workers")
    with two_workers(tmp, "--log-flush-seconds", "0.3") as found:
        yield found


def test_each_worker_loads_the_model_and_the_supervisor_does_not(
    served: tuple[Process, list[int]],
) -> None:
    process, workers = served
    assert len(workers) == WORKERS, process.log.read_text()
    assert "sklearn" not in loaded_libraries(process.pid)
    for pid in workers:
        assert "/sklearn/" in loaded_libraries(pid), f"worker {pid} has not loaded the model"
    expected = _models.classifier().predict([ROW]).tolist()
    answer = httpx.post(f"{process.url}/predict", json={"records": [ROW]}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == expected


def test_each_worker_limits_its_native_threads_to_its_share_of_the_cores(
    served: tuple[Process, list[int]],
) -> None:
    process, workers = served
    share = str(max(1, len(os.sched_getaffinity(0)) // WORKERS))
    for pid in workers:
        env = environment(pid)
        assert env["OMP_NUM_THREADS"] == process.env.get("OMP_NUM_THREADS", "1")
        for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
            assert env[name] == process.env.get(name, share), (pid, name, env[name])


def test_connections_are_spread_over_the_workers(served: tuple[Process, list[int]]) -> None:
    process, workers = served
    port = int(process.url.rsplit(":", 1)[1])
    clients = [httpx.Client(base_url=process.url, timeout=30) for _ in range(32)]
    try:
        for client in clients:  # each keeps its connection open afterwards
            assert client.get("/health").status_code == 200
        counts = connections_per_worker(port, workers)
    finally:
        for client in clients:
            client.close()
    assert sum(counts) == 32, counts
    # hashed evenly: a worker with under 6 of 32 has odds of 1 in 10,000
    assert min(counts) >= 6, f"connections per worker {counts}"


def test_native_thread_limits_divide_the_cores_between_the_workers() -> None:
    assert native_thread_limits(2, cores=2)["OPENBLAS_NUM_THREADS"] == "1"
    assert native_thread_limits(2, cores=16)["MKL_NUM_THREADS"] == "8"
    assert native_thread_limits(3, cores=2)["NUMEXPR_NUM_THREADS"] == "1"
    assert native_thread_limits(1, cores=16)["OMP_NUM_THREADS"] == "1"


def test_two_workers_log_every_request_exactly_once(served: tuple[Process, list[int]]) -> None:
    process, workers = served
    sent = [uuid.uuid4().hex for _ in range(240)]
    port = int(process.url.rsplit(":", 1)[1])
    clients = [httpx.Client(base_url=process.url, timeout=30) for _ in range(16)]

    def post(i: int) -> int:
        headers = {"x-request-id": sent[i]}
        body = {"records": [ROW | {"x": i / 100}]}
        return clients[i % 16].post("/predict", json=body, headers=headers).status_code

    try:
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(post, range(len(sent))))
        counts = connections_per_worker(port, workers)
    finally:
        for client in clients:
            client.close()
    assert codes == [200] * len(sent)
    assert min(counts) >= 1, f"one worker served nothing: connections {counts}"
    logged = wait_for_rows(Path(process.env["CTLOOP_ARTIFACT_URL"]).parent, set(sent))
    assert sorted(logged["request_id"]) == sorted(sent)  # each once: none lost, none twice
    by_id = dict(zip(logged["request_id"], logged["x"], strict=True))
    assert all(abs(by_id[rid] - i / 100) < 1e-9 for i, rid in enumerate(sent))
    assert not (Path(process.env["CTLOOP_ARTIFACT_URL"]) / "dead-letter").exists()
    assert "Traceback" not in process.log.read_text()


def wait_for_rows(tmp: Path, ids: set[str]) -> pd.DataFrame:
    """The logged rows of ``ids`` once every one of them is written (each worker writes
    its own batches into the one workspace every 0.3 s)."""
    store_url, artifacts = workspace_urls(tmp)
    deadline = time.monotonic() + 60
    while True:
        with Workspace.open(store_url, artifacts=artifacts) as workspace:
            logged = read_predictions(workspace, "flights")
        mine = logged[logged["request_id"].isin(ids)]
        if set(mine["request_id"]) == ids or time.monotonic() > deadline:
            return mine
        time.sleep(0.3)


def test_a_second_server_on_the_port_is_refused_not_joined(
    served: tuple[Process, list[int]],
) -> None:
    process, _ = served
    port = process.url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "ctloop", "serve", "flights@champion", "--port", port]
    command += ["--workers", "2", "--poll-seconds", "0"]
    done = subprocess.run(command, env=process.env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def listening_sockets(port: int) -> set[str]:
    """The listening sockets on ``port`` (``socket:[inode]``, as ``/proc/PID/fd`` names them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    found.add(f"socket:[{fields[9]}]")
    return found


def held_sockets(pid: int) -> set[str]:
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            held.add(os.readlink(fd))
    return held


def test_a_worker_that_dies_is_replaced_and_its_socket_closes_with_it(
    served: tuple[Process, list[int]],
) -> None:
    """(Last in this module: it replaces one of the fixture's workers.)"""
    process, workers = served
    port = int(process.url.rsplit(":", 1)[1])
    assert not listening_sockets(port) & held_sockets(process.pid)  # the supervisor has none
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 90
    while process.log.read_text().count("Application startup complete") < WORKERS + 1:
        assert time.monotonic() < deadline, process.log.read_text()
        time.sleep(0.2)
    now = worker_pids(process.pid)
    assert len(now) == WORKERS and workers[0] not in now, (workers, now)
    listening = listening_sockets(port)
    assert len(listening) == WORKERS, "the dead worker's socket is still listening"
    assert all(listening & held_sockets(pid) for pid in now)
    assert not listening & held_sockets(process.pid)
    for _ in range(32):  # new connections: none is hashed to a socket nobody accepts on
        with httpx.Client(base_url=process.url, timeout=10) as client:
            assert client.get("/health").status_code == 200
