"""``ctloop bundle``: the files of a deployable bundle, its manifests against JSON schemas
of the fields it emits, and the bundle served alone by ``ctloop serve`` in a new process
on 127.0.0.1, with no workspace."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ctloop.bundle import build_bundle, open_bundle
from ctloop.errors import ConfigError, IntegrityError
from ctloop.store.workspace import Workspace
from tests.serve import _models

SCHEMAS = Path(__file__).parent / "schemas"
REPO = Path(__file__).resolve().parents[2]
ROWS = [
    {"x": 0.5, "n": 3, "color": "red", "flag": True},
    {"x": -1.0, "n": 0, "color": "blue", "flag": False},
]


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    url = f"sqlite:///{tmp_path / 'ws' / 'metadata.db'}"
    (tmp_path / "ws").mkdir()
    with Workspace.open(url, artifacts=str(tmp_path / "ws" / "artifacts")) as ws:
        version = _models.register(ws, "flights", _models.classifier(), tmp_path)
        ws.registry.set_alias("flights", "champion", version)
        yield ws


@pytest.fixture
def bundle(workspace: Workspace, tmp_path: Path) -> Path:
    build_bundle(workspace, "flights@champion", tmp_path / "bundle")
    return tmp_path / "bundle"


def validator(name: str) -> Any:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = [
        (path.name, Resource.from_contents(json.loads(path.read_text())))
        for path in SCHEMAS.glob("*.json")
    ]
    registry: Registry = Registry().with_resources(resources)
    schema = json.loads((SCHEMAS / name).read_text())
    return Draft202012Validator(schema, registry=registry)


def errors(name: str, document: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(name).iter_errors(document)]


def test_the_manifests_hold_to_their_schemas_and_the_schemas_catch_mistakes(
    bundle: Path,
) -> None:
    deployment, service = yaml.safe_load_all((bundle / "k8s" / "deployment.yaml").read_text())
    inference = yaml.safe_load((bundle / "kserve" / "inferenceservice.yaml").read_text())
    settings = json.loads((bundle / "mlserver" / "model-settings.json").read_text())
    assert errors("deployment.json", deployment) == []
    assert errors("service.json", service) == []
    assert errors("inferenceservice.json", inference) == []
    assert errors("model-settings.json", settings) == []
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80"
    assert errors("deployment.json", deployment)  # a port as text is caught
    inference["spec"]["predictor"]["containers"][0]["name"] = "model"
    assert errors("inferenceservice.json", inference)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert [c["name"] for c in settings["inputs"]] == ["x", "n", "color", "flag"]
    assert [c["datatype"] for c in settings["inputs"]] == ["FP64", "INT64", "BYTES", "BOOL"]


def test_the_bundle_holds_the_model_as_stored_its_lineage_and_pinned_requirements(
    bundle: Path, workspace: Workspace
) -> None:
    document = json.loads((bundle / "bundle.json").read_text())
    version = workspace.registry.resolve("flights@champion")
    record = workspace.metadata.get_artifact(version.artifact_id)
    assert (document["reference"], document["alias"]) == ("flights@1", "champion")
    assert document["artifact"]["digest"] == record.digest
    assert document["lineage"]["artifact_id"] == record.id
    assert (bundle / "model" / "estimator" / "model.skops").is_file()  # the safe format
    for entry in record.files:
        assert document["digests"][f"model/{entry.path}"] == entry.digest
    lines = (bundle / "requirements.txt").read_text().splitlines()
    pinned = {f"{name}=={v}" for name, v in record.properties["requirements"].items()}
    assert pinned <= set(lines) and "ctloop==0.1.0" in lines

    dockerfile = (bundle / "Dockerfile").read_text().splitlines()
    starts = [i for i, line in enumerate(dockerfile) if line.startswith("FROM ")]
    assert len(starts) == 2 and " AS deps" in dockerfile[starts[0]]
    install = next(i for i, line in enumerate(dockerfile) if "pip install -r" in line)
    model = next(i for i, line in enumerate(dockerfile) if "model/" in line and "COPY" in line)
    user = next(i for i, line in enumerate(dockerfile) if line.startswith("USER "))
    assert install < starts[1] < model < user and dockerfile[user] == "USER 10001"
    assert any(line.startswith("HEALTHCHECK") for line in dockerfile)
    assert os.access(bundle / "entrypoint.sh", os.X_OK)
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    assert size < 5_000_000


def test_a_bundle_is_written_only_into_a_new_or_empty_folder(
    workspace: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="busy is not empty; name a new or empty folder"):
        build_bundle(workspace, "flights@champion", tmp_path / "busy")
    build_bundle(workspace, "flights@1", tmp_path / "busy", force=True)
    assert not (tmp_path / "busy" / "notes.txt").exists()


def test_a_changed_model_file_is_refused_by_name(bundle: Path) -> None:
    open_bundle(bundle)
    (bundle / "README.md").write_text("edited")  # not the model: allowed
    open_bundle(bundle)
    (bundle / "model" / "estimator" / "model.skops").write_bytes(b"not a model")
    with pytest.raises(IntegrityError, match=r"model/estimator/model\.skops in the bundle"):
        open_bundle(bundle)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_bundle_alone_serves_in_a_new_process(bundle: Path, tmp_path: Path) -> None:
    alone = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(bundle, alone)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {"CTLOOP_HOME": str(tmp_path / "scratch"), "PYTHONPATH": str(REPO)}
    port = free_port()
    command = [sys.executable, "-m", "ctloop", "serve", str(alone), "--port", str(port)]
    server = subprocess.Popen(
        command, cwd=empty, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the bundle did not start serving in 60 s"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/predict", json={"records": ROWS}, timeout=10)
        assert answer.status_code == 200, answer.text
        import pandas as pd

        expected = _models.classifier().predict(pd.DataFrame(ROWS))
        got = answer.json()["predictions"]
        assert [round(float(g), 9) for g in got] == [round(float(e), 9) for e in expected]
        metadata = httpx.get(f"{url}/v2/models/flights", timeout=5).json()
        assert [i["name"] for i in metadata["inputs"]] == ["x", "n", "color", "flag"]
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert not (empty / ".ctloop").exists()  # no workspace was made where it ran


def test_the_command_writes_the_bundle_and_names_a_bad_reference(
    workspace: Workspace, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {
        "CTLOOP_STORE_URL": str(workspace.store_url),
        "CTLOOP_ARTIFACT_URL": str(workspace.artifact_url),
        "PYTHONPATH": str(REPO),
    }

    def ctloop(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ctloop", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    done = ctloop("bundle", "flights@champion", "-o", "out", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reference"] == "flights@1"
    assert (tmp_path / "out" / "bundle.json").is_file()
    missing = ctloop("bundle", "flights@nosuch", "-o", "other")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "nosuch" in missing.stderr
