"""A model with a Transform served by ``ctloop serve`` in its own process on 127.0.0.1:
every protocol answers the transform's outputs for raw rows, the input's faults are 4xx
sentences naming the field, the transform's own bugs are 5xx with a log line; ``ctloop
predict`` on a file of the same rows writes the same outputs."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctloop.store.workspace import Workspace
from tests.serve import _models, _transforms
from tests.serve._process import serve_process, workspace_urls

RAW = _transforms.RAW
COLUMNS = {name: [row[name] for row in RAW] for name in RAW[0]}


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    env: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("transform-serving")
    store_url, artifacts = workspace_urls(tmp)
    with Workspace.open(store_url, artifacts=artifacts) as workspace:
        version = _models.register(workspace, "flights", _transforms.transformed(), tmp)
        workspace.registry.set_alias("flights", "champion", version)
    # the repository is on the server's path: the transform's module is imported from it
    options = ("--no-log-predictions", "--poll-seconds", "0")
    with serve_process(tmp, "flights@champion", *options) as process:
        yield Served(process.url, process.log, process.env, tmp)


def v2_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    types = {"x": "FP64", "count": "INT64", "colour": "BYTES", "flag": "BYTES"}
    inputs = []
    for name in rows[0]:
        datatype = types.get(name, "BYTES")
        values = [row[name] for row in rows]
        inputs.append({"name": name, "shape": [len(rows)], "datatype": datatype, "data": values})
    return {"inputs": inputs}


def by_protocol(url: str, rows: list[dict[str, Any]]) -> dict[str, httpx.Response]:
    """The same rows sent over each protocol (MLflow twice: split and records)."""
    split = {"columns": list(rows[0]), "data": [list(row.values()) for row in rows]}
    return {
        "native": httpx.post(f"{url}/predict", json={"records": rows}, timeout=10),
        "mlflow-split": httpx.post(
            f"{url}/invocations", json={"dataframe_split": split}, timeout=10
        ),
        "mlflow-records": httpx.post(
            f"{url}/invocations", json={"dataframe_records": rows}, timeout=10
        ),
        "v2": httpx.post(f"{url}/v2/models/flights/infer", json=v2_body(rows), timeout=10),
    }


def outputs(protocol: str, answer: httpx.Response) -> dict[str, list[Any]]:
    """The answer's outputs as name → values, whatever the protocol."""
    assert answer.status_code == 200, (protocol, answer.text)
    document = answer.json()
    if protocol == "v2":
        return {tensor["name"]: tensor["data"] for tensor in document["outputs"]}
    rows = document["predictions"]
    return {name: [row[name] for row in rows] for name in rows[0]}


def test_every_protocol_answers_the_transform_s_outputs_for_raw_rows(served: Served) -> None:
    expected = _transforms.expected()
    answers = by_protocol(served.url, RAW)
    for protocol, answer in answers.items():
        got = outputs(protocol, answer)
        assert list(got) == ["probability", "late"], protocol
        assert got["late"] == expected["late"], protocol
        assert got["probability"] == pytest.approx(expected["probability"], abs=1e-12), protocol
    v2 = answers["v2"].json()["outputs"]
    assert [(t["datatype"], t["shape"]) for t in v2] == [("FP64", [3]), ("BOOL", [3])]
    columns = httpx.post(f"{served.url}/predict", json={"columns": COLUMNS}, timeout=10)
    assert outputs("native", columns) == outputs("native", answers["native"])


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"colour": 3}, "colour", "row 1: 'colour' must be a colour name, not 3"),
        ({"flag": "maybe"}, "flag", "row 1: the model's transform tests.serve._transforms:Ren"),
        ({"count": "3 flights"}, "n", "after the model's transform"),
    ],
    ids=["refused-by-the-transform", "unknown-value", "refused-by-signature"],
)
def test_an_input_fault_is_a_4xx_naming_the_field_on_every_protocol(
    served: Served, change: dict[str, Any], field: str, words: str
) -> None:
    rows = [RAW[0], *({**row, **change} for row in RAW[1:])]
    for protocol, answer in by_protocol(served.url, rows).items():
        assert answer.status_code == 422, (protocol, answer.text)
        assert answer.json()["field"] == field, (protocol, answer.text)
        assert words in answer.json()["error"], (protocol, answer.text)


def test_a_field_the_transform_reads_and_the_request_lacks_is_a_4xx_naming_it(
    served: Served,
) -> None:
    lacking = [{k: v for k, v in row.items() if k != "count"} for row in RAW]
    for protocol, answer in by_protocol(served.url, lacking).items():
        assert answer.status_code == 422, (protocol, answer.text)
        assert answer.json()["field"] == "count", (protocol, answer.text)
        assert "row 0 has no field 'count'" in answer.json()["error"], protocol
    one_row = httpx.post(f"{served.url}/predict", json={"records": [RAW[0], lacking[1]]})
    assert one_row.status_code == 422 and "row 1 has no field 'count'" in one_row.text


def test_a_bug_in_the_transform_is_a_5xx_with_a_log_line(served: Served) -> None:
    rows = [RAW[0], {**RAW[1], "x": "fast"}]
    for protocol, answer in by_protocol(served.url, rows).items():
        assert answer.status_code == 500, (protocol, answer.text)
        error = answer.json()["error"]
        assert "tests.serve._transforms:Renaming failed in preprocess" in error, protocol
        assert "ValueError: could not convert string to float: 'fast'" in error, protocol
    time.sleep(0.2)  # the log line is written as the answer goes out
    log = served.log.read_text()
    assert log.count("tests.serve._transforms:Renaming failed in preprocess on 2 row(s)") >= 4
    assert "Traceback" in log and 'float(r["x"])' in log
    healthy = httpx.post(f"{served.url}/predict", json={"records": RAW}, timeout=10)
    assert healthy.status_code == 200  # the server goes on answering


def test_ctloop_predict_writes_what_the_server_answers(served: Served) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"flight_id": 10 + i, **row} for i, row in enumerate(RAW)]
    pq.write_table(pa.Table.from_pylist(rows), served.tmp / "raw.parquet")
    command = [sys.executable, "-m", "ctloop", "predict", "flights@champion"]
    command += ["-i", "raw.parquet", "-o", "scored.parquet", "--id-column", "flight_id"]
    done = subprocess.run(command, cwd=served.tmp, env=served.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    scored = pq.read_table(served.tmp / "scored.parquet").to_pylist()
    answer = httpx.post(f"{served.url}/predict", json={"records": RAW}, timeout=10).json()
    assert [r["flight_id"] for r in scored] == [10, 11, 12]
    assert [{"probability": r["probability"], "late": r["late"]} for r in scored] == answer[
        "predictions"
    ]
    rows[2]["colour"] = None
    pq.write_table(pa.Table.from_pylist(rows), served.tmp / "bad.parquet")
    command[command.index("raw.parquet")] = "bad.parquet"
    refused = subprocess.run(
        command, cwd=served.tmp, env=served.env, capture_output=True, text=True
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "chunk 0 (rows 0-2)" in refused.stderr and "'colour' must be" in refused.stderr
