"""The public API is exactly what ``ctloop.__all__`` names, and importing it is cheap."""

from __future__ import annotations

import subprocess
import sys

import ctloop


def test_exported_members() -> None:
    exported = {name for name in dir(ctloop) if not name.startswith("_")} | {"__version__"}
    assert set(ctloop.__all__) == {
        "CtloopError",
        "FilePath",
        "Materializer",
        "StepError",
        "__version__",
        "checkpoint",
        "data_version",
        "log_metric",
        "log_metrics",
        "log_param",
        "pipeline",
        "register_materializer",
        "resume",
        "set_tag",
        "step",
    }
    assert set(ctloop.__all__) <= exported | {"Materializer", "checkpoint"}
    for name in ctloop.__all__:
        assert getattr(ctloop, name) is not None


def test_import_and_help_load_no_heavy_library() -> None:
    code = (
        "import sys, ctloop, ctloop.cli.app; "
        "heavy = {'pandas', 'numpy', 'sklearn', 'pyarrow', 'sqlalchemy', 'skops', 'duckdb'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
