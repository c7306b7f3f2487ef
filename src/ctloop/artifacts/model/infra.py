"""Infra validation: does a model load and predict in a fresh process with only what it
declares?

:func:`check_model_in_subprocess` starts ``python -I`` (no ``PYTHONPATH``, no user site)
running :mod:`ctloop.artifacts.model._probe` on the model's folder. The probe refuses
imports of installed distributions the model's ``requirements`` do not name (directly or
through their own requirements), then loads the model and predicts on its input example.
A model that needs a package it does not declare, that is saved with a requirement not
installed here, or whose ``predict`` raises, does not pass. ctloop itself is found where
this process found it (an editable install or a source folder), and so is project code on
``sys.path`` outside ``site-packages`` (where a :class:`PythonModel`'s module lives).

>>> result = check_model_in_subprocess(model)          # doctest: +SKIP
>>> result.passed, result.reason                        # doctest: +SKIP
(False, 'the model imports lightgbm, which its requirements do not declare ...')
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["InfraResult", "check_model_in_subprocess"]

_BOOT = (
    "import sys; sys.path[0:0] = sys.argv[1].split({sep!r}) if sys.argv[1] else []; "
    "from ctloop.artifacts.model._probe import main; sys.exit(main(sys.argv[2:]))"
)


@dataclass(frozen=True)
class InfraResult:
    """Whether the model loaded and predicted in a fresh process, why not, and how long
    it took (``stage``: ``requirements``, ``load`` or ``predict``, where it stopped).

    >>> InfraResult(True, "", 1.5).to_dict()["passed"]
    True
    """

    passed: bool
    reason: str
    seconds: float
    stage: str = "predict"
    refused: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {**self.__dict__, "refused": list(self.refused)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InfraResult:
        """Read what ``to_dict`` wrote."""
        return cls(**{**data, "refused": tuple(data.get("refused", ()))})


def check_model_in_subprocess(
    model: Any, *, timeout: float = 60.0, trusted: bool | None = None
) -> InfraResult:
    """Load ``model`` in a fresh, isolated Python process and predict on its example.

    ``model`` is a :class:`~ctloop.artifacts.model.Model`, a folder it was saved in, or its
    files (relative name → local path, as an artifact's files). ``trusted`` allows a
    pickled model (default: the model's own ``trusted``, or ``CTLOOP_TRUST_PICKLE=1``).
    """
    if trusted is None:
        trusted = bool(getattr(model, "trusted", False))
        trusted = trusted or os.environ.get("CTLOOP_TRUST_PICKLE") == "1"
    with tempfile.TemporaryDirectory(prefix="ctloop-infra-") as scratch:
        directory = _model_folder(model, Path(scratch) / "model")
        return _run_probe(directory, timeout=timeout, trusted=trusted)


def _model_folder(model: Any, target: Path) -> Path:
    if isinstance(model, str | Path):
        return Path(model)
    if isinstance(model, Mapping):
        for name, path in model.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).symlink_to(Path(path).resolve())
        return target
    model.save(target)
    return target


def _run_probe(directory: Path, *, timeout: float, trusted: bool) -> InfraResult:
    command = [sys.executable, "-I", "-c", _BOOT.format(sep=os.pathsep)]
    command += [os.pathsep.join(_code_paths()), str(directory)]
    command += ["--trusted"] if trusted else []
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=directory, check=False
        )
    except subprocess.TimeoutExpired:
        reason = f"the model did not load and predict within {timeout:g} s"
        return InfraResult(False, reason, time.perf_counter() - started, "load")
    seconds = time.perf_counter() - started
    return _result(done, seconds)


def _result(done: subprocess.CompletedProcess[str], seconds: float) -> InfraResult:
    lines = done.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        reason = f"the probe process ended with status {done.returncode}: {tail}"
        return InfraResult(False, reason, seconds, "load")
    return InfraResult(
        bool(report["passed"]),
        str(report["reason"]),
        seconds,
        str(report["stage"]),
        tuple(report.get("refused", ())),
    )


def _code_paths() -> list[str]:
    """Where this process finds ctloop, then project folders outside the installation."""
    ctloop_root = str(Path(__file__).resolve().parents[3])  # the folder holding ctloop/
    installed = {
        str(Path(p).resolve())
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(key))
    }
    found = [ctloop_root]
    for entry in sys.path:
        resolved = str(Path(entry or os.getcwd()).resolve())
        inside = any(resolved.startswith(root) for root in installed)
        if not inside and not resolved.endswith(".zip") and Path(resolved).is_dir():
            found.append(resolved)
    return list(dict.fromkeys(found))
