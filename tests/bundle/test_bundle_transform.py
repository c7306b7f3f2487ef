"""A bundle of a model with a Transform carries the transform's module in ``code/`` and
serves from a new process that could not import it otherwise (no ``PYTHONPATH``, run
from an empty folder); the carried code is checked against ``bundle.json``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ctloop.bundle import build_bundle, open_bundle
from ctloop.errors import IntegrityError, ServingError
from ctloop.store.workspace import Workspace
from tests.bundle.test_bundle import free_port
from tests.serve import _models, _transforms

CARRIED = ["code/tests/__init__.py", "code/tests/serve/__init__.py"]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'ws' / 'metadata.db'}"
    (tmp_path / "ws").mkdir()
    with Workspace.open(url, artifacts=str(tmp_path / "ws" / "artifacts")) as ws:
        version = _models.register(ws, "flights", _transforms.transformed(), tmp_path)
        ws.registry.set_alias("flights", "champion", version)
        notes = tmp_path / "notes.py"
        notes.write_text("CUT = 0.4\n")
        build_bundle(ws, "flights@champion", tmp_path / "bundle", code=[notes])
    return tmp_path / "bundle"


def test_the_bundle_carries_the_transform_s_module_and_checks_it(bundle: Path) -> None:
    document = json.loads((bundle / "bundle.json").read_text())
    expected = [*CARRIED, "code/notes.py", "code/tests/serve/_transforms.py"]
    assert document["code"] == sorted(expected)
    assert document["artifact"]["properties"]["transform"] == "tests.serve._transforms:Renaming"
    for relative in document["code"]:
        assert relative in document["digests"]
    assert "ENV PYTHONPATH=/bundle/code" in (bundle / "Dockerfile").read_text()
    assert 'export PYTHONPATH="$(pwd)/code' in (bundle / "entrypoint.sh").read_text()
    (bundle / "code" / "tests" / "serve" / "_transforms.py").write_text("raise SystemExit\n")
    with pytest.raises(IntegrityError, match=r"code/tests/serve/_transforms\.py in the bundle"):
        open_bundle(bundle)


def test_a_transform_that_does_not_import_here_cannot_be_bundled(tmp_path: Path) -> None:
    model = _transforms.transformed()
    model.save(tmp_path / "saved")
    description = json.loads((tmp_path / "saved" / "model.json").read_text())
    description["transform"] = {"class": "no_such_module:Renaming"}
    (tmp_path / "saved" / "model.json").write_text(json.dumps(description))
    from ctloop.bundle._code import carry_code

    with pytest.raises(ServingError, match="module 'no_such_module' is not found"):
        carry_code(tmp_path / "saved", tmp_path / "out")


def test_the_bundle_alone_serves_the_transform_in_a_new_process(
    bundle: Path, tmp_path: Path
) -> None:
    alone = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(bundle, alone)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["CTLOOP_HOME"] = str(tmp_path / "scratch")
    probe = [sys.executable, "-c", "import tests.serve._transforms"]
    # from where the server runs, the transform's module imports only from the bundle
    assert subprocess.run(probe, cwd=empty, env=env, capture_output=True).returncode != 0
    port = free_port()
    command = [sys.executable, "-m", "ctloop", "serve", str(alone), "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=empty, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # a busy two-core runner starts it slowly
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the bundle did not start serving in 120 s"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/predict", json={"records": _transforms.RAW}, timeout=10)
        refused = httpx.post(
            f"{url}/predict", json={"records": [{**_transforms.RAW[0], "colour": 1}]}, timeout=10
        )
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["predictions"]
    expected = _transforms.expected()
    assert [row["late"] for row in rows] == expected["late"]
    assert [row["probability"] for row in rows] == pytest.approx(expected["probability"])
    assert refused.status_code == 422 and refused.json()["field"] == "colour"


def test_mlserver_settings_list_the_raw_fields_a_transform_declares(tmp_path: Path) -> None:
    from tests.serve.test_transform_metadata import Declared, model_with

    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    settings_of = {}
    with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as ws:
        for name, model in [
            ("declared", model_with(Declared(0.4))),
            ("sampled", model_with(_transforms.Renaming(0.4), _transforms.RAW)),
            ("undeclared", model_with(_transforms.Renaming(0.4))),
        ]:
            version = _models.register(ws, name, model, tmp_path)
            build_bundle(ws, f"{name}@{version}", tmp_path / name)
            path = tmp_path / name / "mlserver" / "model-settings.json"
            settings_of[name] = json.loads(path.read_text())["inputs"]
    declared = [(i["name"], i["datatype"]) for i in settings_of["declared"]]
    assert declared == [("x", "FP64"), ("count", "INT64"), ("colour", "BYTES")]
    assert {i["name"] for i in settings_of["sampled"]} == set(_transforms.RAW[0])
    assert settings_of["undeclared"] == []
