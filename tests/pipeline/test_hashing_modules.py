"""A step's code hash follows the code it calls into the user's other modules.

Each variant of a project is written to its own folder and imported under the same module
names (``flow``, ``scaling``, ``units``), forgotten again afterwards, so two variants
differ only in what a user would edit.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctloop.pipeline._hashing import code_fingerprint, code_hash
from ctloop.pipeline._origins import distribution_pins

SCALING = """
    FACTOR = 2


    def scale(x):
        return x * FACTOR
"""

FLOW = """
    from ctloop import pipeline, step
    {imports}


    @step
    def compute() -> int:
        return {call}


    @pipeline
    def flow():
        compute()
"""


def write(folder: Path, files: Mapping[str, str]) -> Path:
    for name, body in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return folder


def flow(imports: str, call: str) -> str:
    return textwrap.dedent(FLOW).format(imports=imports, call=call)


@contextmanager
def imported(folder: Path) -> Iterator[ModuleType]:
    """``flow`` imported from ``folder``; its modules are forgotten on the way out."""
    before = set(sys.modules)
    sys.path.insert(0, str(folder))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module("flow")
    finally:
        sys.path.remove(str(folder))
        for name in set(sys.modules) - before:
            del sys.modules[name]


def step_hash(folder: Path, files: Mapping[str, str]) -> str:
    with imported(write(folder, files)) as module:
        return code_hash(module.compute)


IMPORT_STYLES = {
    "from-import": ({}, "from scaling import scale", "scale(3)", "scaling.py"),
    "aliased name": ({}, "from scaling import scale as grow", "grow(3)", "scaling.py"),
    "module": ({}, "import scaling", "scaling.scale(3)", "scaling.py"),
    "aliased module": ({}, "import scaling as sc", "sc.scale(3)", "scaling.py"),
    "package submodule": (
        {"tools/__init__.py": ""},
        "from tools import scaling",
        "scaling.scale(3)",
        "tools/scaling.py",
    ),
    "dotted import": (
        {"tools/__init__.py": ""},
        "import tools.scaling",
        "tools.scaling.scale(3)",
        "tools/scaling.py",
    ),
}


@pytest.mark.parametrize("style", list(IMPORT_STYLES))
def test_edits_in_an_imported_module_change_the_hash_and_comments_do_not(
    tmp_path: Path, style: str
) -> None:
    extra, imports, call, where = IMPORT_STYLES[style]

    def variant(name: str, scaling: str) -> str:
        return step_hash(tmp_path / name, {**extra, "flow.py": flow(imports, call), where: scaling})

    base = variant("base", SCALING)
    commented = variant(
        "commented",
        '''
        FACTOR = 2  # how much bigger


        def scale(x):
            """Scale x up."""
            # multiply
            return (x *
                    FACTOR)
        ''',
    )
    edited = variant("edited", SCALING.replace("x * FACTOR", "x * FACTOR + 1"))
    constant = variant("constant", SCALING.replace("FACTOR = 2", "FACTOR = 10"))
    assert commented == base
    assert edited != base
    assert constant != base


def test_a_class_method_in_another_module_counts(tmp_path: Path) -> None:
    scaler = """
        class Scaler:
            def __init__(self, factor):
                self.factor = factor

            @classmethod
            def default(cls):
                return cls(2)

            def apply(self, x):
                return x * self.factor
    """
    files = {"flow.py": flow("from scaling import Scaler", "Scaler.default().apply(3)")}
    base = step_hash(tmp_path / "base", {**files, "scaling.py": scaler})
    method = step_hash(
        tmp_path / "method",
        {**files, "scaling.py": scaler.replace("x * self.factor", "x * self.factor * 2")},
    )
    classmethod_ = step_hash(
        tmp_path / "classmethod", {**files, "scaling.py": scaler.replace("cls(2)", "cls(3)")}
    )
    assert len({base, method, classmethod_}) == 3


@pytest.mark.parametrize(
    ("imports", "call"),
    [("from units import factor", "factor()"), ("import units as u", "u.factor()")],
)
def test_a_module_that_imports_another_is_followed(tmp_path: Path, imports: str, call: str) -> None:
    scaling = f"""
        {imports}


        def scale(x):
            return x * {call}
    """
    files = {"flow.py": flow("from scaling import scale", "scale(3)"), "scaling.py": scaling}
    base = step_hash(tmp_path / "base", {**files, "units.py": "def factor():\n    return 2\n"})
    edited = step_hash(tmp_path / "edited", {**files, "units.py": "def factor():\n    return 3\n"})
    assert edited != base


def test_a_cycle_between_two_modules_ends_and_both_count(tmp_path: Path) -> None:
    files = {
        "flow.py": flow("import ping", "ping.down(3)"),
        "ping.py": "import pong\n\n\ndef down(n):\n    return pong.up(n - 1) if n > 0 else 0\n",
        "pong.py": "import ping\n\n\ndef up(n):\n    return ping.down(n) + 1\n",
    }
    base = step_hash(tmp_path / "base", files)
    edited = step_hash(
        tmp_path / "edited", {**files, "pong.py": files["pong.py"].replace("+ 1", "+ 2")}
    )
    assert edited != base


def test_a_cached_function_in_another_module_counts(tmp_path: Path) -> None:
    table = "import functools\n\n\n@functools.cache\ndef table():\n    return {'a': 1}\n"
    files = {"flow.py": flow("from scaling import table", "table()['a']")}
    base = step_hash(tmp_path / "base", {**files, "scaling.py": table})
    edited = step_hash(tmp_path / "edited", {**files, "scaling.py": table.replace("1}", "2}")})
    assert edited != base


def test_installed_packages_count_by_version_and_the_standard_library_not_at_all(
    tmp_path: Path,
) -> None:
    files = {
        "flow.py": flow("import math\nfrom scaling import scale", "scale(3)"),
        "scaling.py": (
            "import numpy as np\nfrom sklearn.metrics import roc_auc_score\n\n\n"
            "def scale(x):\n    return int(np.sum([x, x])) + int(roc_auc_score([0, 1], [0, 1]))\n"
        ),
    }
    with imported(write(tmp_path, files)) as module:
        found = code_fingerprint(module.compute).distributions
    assert found == (
        f"numpy=={importlib.metadata.version('numpy')}",
        f"scikit-learn=={importlib.metadata.version('scikit-learn')}",
    )


def test_distribution_pins_name_distributions_and_follow_their_versions() -> None:
    owners = {"sklearn": ["scikit-learn"], "yaml": ["PyYAML"]}
    before = distribution_pins(
        ["sklearn", "numpy", "yaml", "numpy"],
        owners=owners,
        versions={"scikit-learn": "1.5.0", "numpy": "2.0.0", "PyYAML": "6.0"},
    )
    assert before == ["numpy==2.0.0", "pyyaml==6.0", "scikit-learn==1.5.0"]
    after = distribution_pins(
        ["sklearn", "numpy", "yaml"],
        owners=owners,
        versions={"scikit-learn": "1.6.0", "numpy": "2.0.0", "PyYAML": "6.0"},
    )
    assert after == ["numpy==2.0.0", "pyyaml==6.0", "scikit-learn==1.6.0"]
    assert distribution_pins(["mystery"], owners={}, versions={}) == ["mystery==unknown"]


HASH_IN_A_FRESH_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
import flow
from ctloop.pipeline._hashing import code_hash
print(code_hash(flow.compute))
"""

short_text = st.text(alphabet="abcdefghij", min_size=1, max_size=5)


@settings(max_examples=10, deadline=None)
@given(
    factor=st.integers(-1000, 1000),
    operator=st.sampled_from(["+", "-", "*"]),
    tags=st.sets(short_text, max_size=6),
    weights=st.dictionaries(
        short_text, st.floats(allow_nan=False, allow_infinity=False), max_size=4
    ),
)
def test_the_hash_is_stable_in_one_process_and_across_processes(
    factor: int, operator: str, tags: set[str], weights: dict[str, float]
) -> None:
    scaling = (
        f"FACTOR = {factor}\nTAGS = {tags!r}\nWEIGHTS = {weights!r}\n\n\n"
        f"def scale(x):\n    return (x {operator} FACTOR, len(TAGS), WEIGHTS)\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        files = {"flow.py": flow("import scaling", "scaling.scale(3)"), "scaling.py": scaling}
        with imported(write(Path(folder), files)) as module:
            first, second = code_hash(module.compute), code_hash(module.compute)
        fresh = subprocess.run(
            [sys.executable, "-c", HASH_IN_A_FRESH_PROCESS, folder],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "random", "PYTHONDONTWRITEBYTECODE": "1"},
        ).stdout.strip()
    assert first == second == fresh


RUN_AND_LOAD = """
import json, sys
from ctloop.pipeline._loading import load_pipeline
pipeline, _ = load_pipeline("flow.py:flow")
result = pipeline.run()
print(json.dumps({"status": result.step_status["compute"], "value": result.load("compute")}))
"""


def run_flow(folder: Path) -> dict[str, object]:
    """Run ``flow.py:flow`` as a user would, in a fresh process, against a private home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {"CTLOOP_HOME": str(folder.parent / "home"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LOAD],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_editing_a_function_in_another_module_reruns_the_step(tmp_path: Path) -> None:
    project = write(
        tmp_path / "project",
        {"flow.py": flow("from scaling import scale", "scale(3)"), "scaling.py": SCALING},
    )
    assert run_flow(project) == {"status": "succeeded", "value": 6}
    assert run_flow(project) == {"status": "cached", "value": 6}
    write(project, {"scaling.py": SCALING.replace("x * FACTOR", "x * FACTOR * 5")})
    assert run_flow(project) == {"status": "succeeded", "value": 30}


def test_a_comment_or_formatting_edit_in_another_module_stays_cached(tmp_path: Path) -> None:
    project = write(
        tmp_path / "project",
        {"flow.py": flow("import scaling", "scaling.scale(3)"), "scaling.py": SCALING},
    )
    assert run_flow(project) == {"status": "succeeded", "value": 6}
    reformatted = "FACTOR = (2)  # twice\n\ndef scale( x ):\n    # bigger\n    return x*FACTOR\n"
    write(project, {"scaling.py": reformatted})
    assert run_flow(project) == {"status": "cached", "value": 6}


def test_editing_a_module_that_another_module_imports_reruns_the_step(tmp_path: Path) -> None:
    project = write(
        tmp_path / "project",
        {
            "flow.py": flow("from scaling import scale", "scale(3)"),
            "scaling.py": "import units\n\n\ndef scale(x):\n    return x * units.factor()\n",
            "units.py": "def factor():\n    return 2\n",
        },
    )
    assert run_flow(project) == {"status": "succeeded", "value": 6}
    write(project, {"units.py": "def factor():\n    return 7\n"})
    assert run_flow(project) == {"status": "succeeded", "value": 21}


@pytest.mark.parametrize("name", ["_hashing", "_origins", "_sources"])
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(f"ctloop.pipeline.{name}"))
    assert result.attempted > 0
    assert result.failed == 0
