"""Helpers for the tests of the prediction and feedback logs: a store that refuses blobs
for real, the dead-letter files, the row counters of ``/metrics``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson


@contextmanager
def blobs_refused(artifact_url: str) -> Iterator[None]:
    """While inside, the local artifact store at ``artifact_url`` cannot store a new blob:
    a file stands where its ``objects`` folder was (a read-only folder would not stop a
    process running as root; a file stops everyone). Named objects still work."""
    objects = Path(artifact_url) / "objects"
    aside = objects.with_name("objects-aside")
    objects.rename(aside)
    objects.write_text("a file where the blob folder should be")
    try:
        yield
    finally:
        objects.unlink()
        aside.rename(objects)


def dead_letters(artifact_url: str, model: str, kind: str) -> list[dict[str, Any]]:
    """The rows of every ``<kind>-*.jsonl`` dead-letter file of ``model``, oldest first."""
    folder = Path(artifact_url) / "dead-letter" / model
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob(f"{kind}-*.jsonl")):
        rows += [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
    return rows


def row_counts(metrics: str, family: str) -> dict[str, float]:
    """``{outcome: value}`` of the counter ``<family>_total`` in a ``/metrics`` text."""
    pattern = rf'^{family}_total{{outcome="([a-z_]+)"}} ([0-9.e+]+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, metrics, re.MULTILINE)}


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Wait until ``condition()`` holds (a background thread's work), or fail."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the background writer did not get there"
        time.sleep(0.02)
