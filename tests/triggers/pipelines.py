"""Small real pipelines that triggers start in the scheduler tests.

``ingest`` counts the lines of the files it is given; ``gated`` waits until a release
file exists (so a test can act while its run is in progress); ``broken`` fails.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ctloop import pipeline, step


@step
def count_lines(paths: list[str]) -> dict:
    return {"files": len(paths), "lines": sum(len(Path(p).read_text().splitlines()) for p in paths)}


@pipeline
def ingest(paths: list[str], label: str = "") -> None:
    count_lines(paths)


@step
def wait_for_release(release: str) -> dict:
    with open(os.environ["CALLS_FILE"], "a") as fh:
        fh.write(f"started {os.getpid()}\n")
    while not Path(release).exists():
        time.sleep(0.05)
    return {"released": True}


@pipeline
def gated(release: str) -> None:
    wait_for_release(release)


@step
def explode() -> dict:
    raise RuntimeError("the training data is broken")


@pipeline
def broken() -> None:
    explode()


@step
def note_cores() -> dict:
    with open(os.environ["CALLS_FILE"], "a") as fh:
        fh.write(f"cores {os.environ.get('CTLOOP_CORES')} {os.environ.get('OMP_NUM_THREADS')}\n")
    return {"noted": True}


@pipeline
def cores() -> None:
    note_cores()


@step
def judge_candidate() -> dict:
    from ctloop.evaluate import Evaluation, gate

    print("candidate auc 0.61, champion auc 0.70")
    champion = Evaluation("classification", "late", 500, {"auc": 0.70})
    candidate = Evaluation("classification", "late", 500, {"auc": 0.61})
    gate(candidate, champion, change=["auc may drop by 0.01"]).raise_for_failure()
    return {"blessed": True}


@pipeline
def rejected() -> None:
    judge_candidate()
