"""The public API is exactly what ``ctloop.__all__`` names, and importing it is cheap."""

from __future__ import annotations

import subprocess
import sys
import types

import ctloop

PUBLIC = {
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


def test_exported_members() -> None:
    assert set(ctloop.__all__) == PUBLIC
    assert ctloop.__all__ == sorted(ctloop.__all__)
    for name in ctloop.__all__:
        assert getattr(ctloop, name) is not None


def test_a_fresh_import_holds_only_the_public_names() -> None:
    # like httpx's exported-members test, but on vars(): dir() answers __all__ anyway
    code = "import ctloop; print(' '.join(k for k in vars(ctloop) if not k.startswith('_')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    eager = {"CtloopError", "StepError", "register_materializer", "resume"}  # the rest on use
    assert set(out.stdout.split()) == eager


def test_other_names_in_vars_are_only_subpackages_imported_since() -> None:
    extra = {k: v for k, v in vars(ctloop).items() if not k.startswith("_") and k not in PUBLIC}
    for name, value in extra.items():
        assert isinstance(value, types.ModuleType), f"ctloop.{name} is exported by accident"
        assert value.__name__ == f"ctloop.{name}"


def test_subpackages_are_reached_as_attributes() -> None:
    import ctloop.errors
    import ctloop.store.metadata

    assert ctloop.errors.CtloopError is ctloop.CtloopError
    assert ctloop.store.metadata.MetadataStore is not None
    from ctloop import config

    assert config.Settings is not None
    try:
        ctloop.nosuch  # noqa: B018
    except AttributeError as exc:
        assert "nosuch" in str(exc)
    else:
        raise AssertionError("ctloop.nosuch did not raise AttributeError")


def test_import_and_help_load_no_heavy_library() -> None:
    code = (
        "import sys, ctloop, ctloop.cli.app; "
        "heavy = {'pandas', 'numpy', 'sklearn', 'pyarrow', 'sqlalchemy', 'skops', 'duckdb'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_decorator_stays_ctloop_pipeline_after_the_subpackage_is_imported() -> None:
    code = (
        "import ctloop.pipeline._runner, ctloop\n"
        "from ctloop import pipeline, step\n"
        "print(callable(pipeline) and type(pipeline).__name__ != 'module', ctloop.pipeline is pipeline)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_serving_does_not_load_the_pipeline_engine() -> None:
    # the contract at run time, where import-linter sees only the import statements
    code = "import ctloop.serve._app"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    loaded = [line.split("|")[-1].strip() for line in out.stderr.splitlines()]
    assert "ctloop.serve._app" in loaded
    assert not [m for m in loaded if m.startswith(("ctloop.pipeline", "ctloop.components"))]
