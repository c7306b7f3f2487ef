"""``/metrics`` of ``ctloop serve --workers 2`` (a real server on 127.0.0.1) answers for the
whole server: whichever worker takes a scrape, it counts every worker's requests
(prometheus-client's multiprocess mode, in a private folder the supervisor makes and
removes); a worker that is killed keeps its counts in the totals, and its live gauges
leave them. One worker keeps its own registry and writes no files."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from ctloop.serve._metrics import MULTIPROCESS_ENV
from ctloop.serve._server import METRICS_FOLDER_ENV
from tests.serve._process import Process, serve_process
from tests.serve.test_workers import (
    ROW,
    WORKERS,
    connections_per_worker,
    environment,
    register_champion,
    two_workers,
    worker_pids,
)

K = 90  # requests sent before the scrapes


def values(text: str) -> dict[str, float]:
    """``{sample name: value summed over its labels}`` of a ``/metrics`` text."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found


def requests_answered(text: str) -> float:
    return values(text).get("ctloop_requests_total", 0.0)


def scrape_on_each_worker(process: Process, workers: list[int]) -> dict[int, list[str]]:
    """``/metrics`` scraped over fresh connections until each worker has answered two
    (the kernel hashes each new connection to one worker's socket): ``{pid: texts}``."""
    port = int(process.url.rsplit(":", 1)[1])
    answered: dict[int, list[str]] = {pid: [] for pid in workers}
    for _ in range(80):
        with httpx.Client(base_url=process.url, timeout=30) as client:
            assert client.get("/health").status_code == 200  # the connection stays open
            held = connections_per_worker(port, workers)
            answer = client.get("/metrics")
        assert answer.status_code == 200, answer.text
        if sum(held) == 1:
            answered[workers[held.index(1)]].append(answer.text)
        if all(len(texts) >= 2 for texts in answered.values()):
            break
    assert all(answered.values()), (
        f"scrapes per worker: { {p: len(t) for p, t in answered.items()} }"
    )
    return answered


def post_many(process: Process, count: int) -> None:
    """``count`` predictions over up to 24 connections (from 24 on, odds that a worker
    gets none are 1 in 8 million)."""
    clients = [httpx.Client(base_url=process.url, timeout=30) for _ in range(24)]

    def post(i: int) -> int:
        body = {"records": [ROW | {"x": i / 100}]}
        return clients[i % 24].post("/predict", json=body).status_code

    try:
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(post, range(count)))
    finally:
        for client in clients:
            client.close()
    assert codes == [200] * count


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, list[int], Path]]:
    tmp = tmp_path_factory.mktemp("workers-metrics")
    with two_workers(tmp, "--log-flush-seconds", "0.3") as (process, workers):
        folder = Path(environment(workers[0])[MULTIPROCESS_ENV])
        yield process, workers, folder
    assert not folder.exists(), "the supervisor left its metric files behind"


def test_the_workers_share_a_fresh_private_folder(
    served: tuple[Process, list[int], Path],
) -> None:
    process, workers, folder = served
    assert MULTIPROCESS_ENV == METRICS_FOLDER_ENV
    assert {environment(pid)[MULTIPROCESS_ENV] for pid in workers} == {str(folder)}
    assert folder.name.startswith("ctloop-metrics-") and folder.is_dir()
    assert folder.stat().st_mode & 0o077 == 0, "readable by other users"
    assert MULTIPROCESS_ENV not in process.env  # the supervisor's own, not inherited


def test_every_scrape_counts_the_requests_of_every_worker(
    served: tuple[Process, list[int], Path],
) -> None:
    process, workers, _ = served
    post_many(process, K)
    per_worker = {pid: requests_of(served[2], pid) for pid in workers}
    assert all(per_worker.values()) and sum(per_worker.values()) == K, per_worker
    for pid, texts in scrape_on_each_worker(process, workers).items():
        for text in texts:
            found = values(text)
            assert requests_answered(text) == K, (pid, found)
            assert found["ctloop_request_latency_seconds_count"] == K, pid
            assert found["ctloop_predicted_rows_total"] == K, pid
            assert found["ctloop_serve_workers"] == WORKERS, pid
            assert found["ctloop_model_version_info"] == 1, pid  # one version, both workers
            assert found["ctloop_prediction_log_errors"] == 0, pid


def requests_of(folder: Path, pid: int) -> float:
    """The requests worker ``pid`` answered, from its own counter file."""
    merged = MultiProcessCollector.merge([str(folder / f"counter_{pid}.db")])
    return sum(s.value for m in merged if m.name == "ctloop_requests" for s in m.samples)


def test_the_prediction_log_counts_every_workers_rows(
    served: tuple[Process, list[int], Path],
) -> None:
    process, _, _ = served
    deadline = time.monotonic() + 30
    while True:  # each worker writes its rows every 0.3 s, its counts every 0.5 s
        rows = {}
        for family in text_string_to_metric_families(httpx.get(f"{process.url}/metrics").text):
            if family.name == "ctloop_prediction_log_rows":
                rows = {s.labels["outcome"]: s.value for s in family.samples}
        if rows.get("written") == K or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert rows["accepted"] == K and rows["written"] == K, rows
    assert rows["dropped"] == 0 and rows["dead_letter"] == 0 and rows["rejected"] == 0


def started(process: Process) -> int:
    return process.log.read_text().count("Application startup complete")


def wait_for_started(process: Process, count: int) -> None:
    deadline = time.monotonic() + 120
    while started(process) < count:
        assert time.monotonic() < deadline, process.log.read_text()
        time.sleep(0.2)


def test_workers_replaced_on_sighup_leave_their_counts(
    served: tuple[Process, list[int], Path],
) -> None:
    """(It replaces the fixture's workers: the tests after it look theirs up.)"""
    process, workers, folder = served
    post_many(process, 20)
    before = started(process)
    os.kill(process.pid, signal.SIGHUP)
    wait_for_started(process, before + WORKERS)
    deadline = time.monotonic() + 60
    while set(worker_pids(process.pid)) & set(workers):  # the old ones retire
        assert time.monotonic() < deadline, process.log.read_text()
        time.sleep(0.2)
    now = worker_pids(process.pid)
    assert len(now) == WORKERS
    for texts in scrape_on_each_worker(process, now).values():
        for text in texts:
            found = values(text)
            assert requests_answered(text) == K + 20
            assert found["ctloop_serve_workers"] == WORKERS
            rows = {
                s.labels["outcome"]: s.value
                for f in text_string_to_metric_families(text)
                if f.name == "ctloop_prediction_log_rows"
                for s in f.samples
            }
            assert rows["accepted"] == K + 20 and rows["written"] == K + 20, rows
    assert not any(any(folder.glob(f"gauge_live*_{pid}.db")) for pid in workers)


def test_a_killed_worker_keeps_its_counts_and_loses_its_live_gauges(
    served: tuple[Process, list[int], Path],
) -> None:
    """(Last in this module: it replaces one of the workers.)"""
    process, _, folder = served
    workers = worker_pids(process.pid)
    post_many(process, 30)
    killed = workers[0]
    answered_by_killed = requests_of(folder, killed)
    assert answered_by_killed > 0
    assert (folder / f"gauge_livesum_{killed}.db").exists()
    before = started(process)
    os.kill(killed, signal.SIGKILL)
    wait_for_started(process, before + 1)
    now = worker_pids(process.pid)
    assert killed not in now and len(now) == WORKERS
    assert not list(folder.glob(f"gauge_live*_{killed}.db")), "the dead worker's gauges stay"
    assert (folder / f"counter_{killed}.db").exists()
    for texts in scrape_on_each_worker(process, now).values():
        for text in texts:
            found = values(text)
            assert requests_answered(text) == K + 50  # the killed worker's share kept
            assert found["ctloop_serve_workers"] == WORKERS  # not 3: its gauge is gone
            assert found["ctloop_model_version_info"] == 1
    post_many(process, 10)
    assert requests_answered(httpx.get(f"{process.url}/metrics").text) == K + 60
    assert "Traceback" not in process.log.read_text()


def test_one_worker_keeps_its_own_registry_and_writes_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_champion(tmp_path)
    folder = tmp_path / "metric-files"
    folder.mkdir()
    monkeypatch.setenv(MULTIPROCESS_ENV, str(folder))  # set by the user: not used
    with serve_process(tmp_path, "flights@champion", "--poll-seconds", "0") as process:
        post_many(process, 5)
        text = httpx.get(f"{process.url}/metrics").text
    assert requests_answered(text) == 5
    assert values(text)["ctloop_serve_workers"] == 1
    assert "ctloop_requests_created" in text  # one process's registry (files keep no times)
    assert not list(folder.iterdir())


def test_workers_on_one_shared_socket_count_together(tmp_path: Path) -> None:
    with two_workers(tmp_path, "--shared-socket") as (process, workers):
        post_many(process, 40)
        folder = Path(environment(workers[0])[MULTIPROCESS_ENV])
        assert sum(requests_of(folder, pid) for pid in workers) == 40
        for _ in range(6):
            found = values(httpx.get(f"{process.url}/metrics", timeout=30).text)
            assert found["ctloop_requests_total"] == 40
            assert found["ctloop_serve_workers"] == WORKERS
    assert not folder.exists()
