"""The KServe V2 endpoints spoken to by the real Triton HTTP client, in JSON and in binary
mode, with compressed requests and answers, and its model, repository and statistics calls."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.serve import _models
from tests.serve.conftest import LiveServer, ServingStore, live_server

ROWS = [
    {"x": 0.1, "n": 3, "color": "red", "flag": True},
    {"x": -1.5, "n": 7, "color": "blue", "flag": False},
]
TYPES = {"x": "FP64", "n": "INT64", "color": "BYTES", "flag": "BOOL"}


def connect(server: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.fixture
def client(server: LiveServer) -> Iterator[triton.InferenceServerClient]:
    with connect(server) as connected:
        yield connected


def tensor(name: str, values: list[object], datatype: str, binary: bool) -> triton.InferInput:
    if datatype == "BYTES":
        array = np.array([str(v).encode() for v in values], dtype=object)
    else:
        array = np.array(
            values, dtype={"FP64": np.float64, "INT64": np.int64, "BOOL": bool}[datatype]
        )
    given = triton.InferInput(name, [len(values)], datatype)
    given.set_data_from_numpy(array, binary_data=binary)
    return given


def inputs(rows: list[dict[str, object]], *, binary: bool = False) -> list[triton.InferInput]:
    return [tensor(name, [r[name] for r in rows], kind, binary) for name, kind in TYPES.items()]


def expected(rows: list[dict[str, object]]) -> np.ndarray:
    predictions: np.ndarray = _models.classifier().predict(rows)
    return predictions


def test_health_and_metadata_through_triton(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("flights") and client.is_model_ready("flights", "1")
    metadata = client.get_model_metadata("flights")
    assert metadata["name"] == "flights" and metadata["versions"] == ["1"]
    assert [i["datatype"] for i in metadata["inputs"]] == ["FP64", "INT64", "BYTES", "BOOL"]
    assert metadata["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]
    assert client.get_model_metadata("flights", "1") == metadata
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


def test_model_config_and_repository_index(client: triton.InferenceServerClient) -> None:
    config = client.get_model_config("flights")
    assert config["name"] == "flights" and config["max_batch_size"] == 0
    assert config["backend"] == "ctloop"
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [
        ("x", "TYPE_FP64", [-1]),
        ("n", "TYPE_INT64", [-1]),
        ("color", "TYPE_STRING", [-1]),
        ("flag", "TYPE_BOOL", [-1]),
    ]
    assert config["output"] == [{"name": "predictions", "data_type": "TYPE_FP64", "dims": [-1]}]
    assert client.get_model_config("flights", "1") == config
    index = client.get_model_repository_index()
    assert index == [{"name": "flights", "version": "1", "state": "READY"}]


def test_infer_through_triton_matches_the_model(client: triton.InferenceServerClient) -> None:
    wanted = [triton.InferRequestedOutput("predictions", binary_data=False)]
    result = client.infer("flights", inputs(ROWS), outputs=wanted, request_id="t1")
    got = result.as_numpy("predictions")
    assert got.shape == (2,)
    np.testing.assert_allclose(got, expected(ROWS))
    response = result.get_response()
    assert response["id"] == "t1" and response["model_version"] == "1"
    assert "parameters" not in response["outputs"][0]  # the JSON answer carries the data


@pytest.mark.parametrize("outputs", ["binary", "default", "json"])
def test_binary_tensors_through_triton(client: triton.InferenceServerClient, outputs: str) -> None:
    wanted = {
        "binary": [triton.InferRequestedOutput("predictions", binary_data=True)],
        "json": [triton.InferRequestedOutput("predictions", binary_data=False)],
        "default": None,  # the client asks for every output in binary
    }[outputs]
    rows = ROWS * 3
    result = client.infer("flights", inputs(rows, binary=True), outputs=wanted, request_id="b1")
    got = result.as_numpy("predictions")
    assert got.dtype == np.float64 and got.shape == (6,)
    np.testing.assert_allclose(got, expected(rows))
    (output,) = result.get_response()["outputs"]
    sent_binary = "binary_data_size" in output.get("parameters", {})
    assert sent_binary == (outputs != "json")
    assert result.get_response()["id"] == "b1"


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary", [True, False])
def test_compressed_requests_and_answers(
    client: triton.InferenceServerClient, algorithm: str, binary: bool
) -> None:
    wanted = [triton.InferRequestedOutput("predictions", binary_data=binary)]
    result = client.infer(
        "flights",
        inputs(ROWS, binary=binary),
        outputs=wanted,
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,
    )
    np.testing.assert_allclose(result.as_numpy("predictions"), expected(ROWS))


def test_triton_sees_errors_naming_the_column(client: triton.InferenceServerClient) -> None:
    bad = inputs(ROWS)[:3]  # no 'flag'
    with pytest.raises(InferenceServerException, match="flag"):
        client.infer("flights", bad)
    with pytest.raises(InferenceServerException, match="flag"):
        client.infer("flights", inputs(ROWS, binary=True)[:3])
    with pytest.raises(InferenceServerException, match="not served here"):
        client.infer("cars", inputs(ROWS))


def test_triton_sees_ctloop_errors_on_every_call(client: triton.InferenceServerClient) -> None:
    for call in (
        client.get_model_metadata,
        client.get_model_config,
        client.get_inference_statistics,
    ):
        with pytest.raises(InferenceServerException, match="'cars' is not served here") as raised:
            call("cars")
        assert raised.value.status() == "404"
    with pytest.raises(InferenceServerException, match="version 9") as raised:
        client.get_model_config("flights", "9")
    assert raised.value.status() == "404"
    wrong = [triton.InferRequestedOutput("probability", binary_data=True)]
    with pytest.raises(InferenceServerException, match="'probability'") as raised:
        client.infer("flights", inputs(ROWS, binary=True), outputs=wrong)
    assert raised.value.status() == "400"
    with pytest.raises(InferenceServerException, match="no endpoint") as raised:
        client.load_model("flights")
    assert raised.value.status() == "404"


def test_statistics_count_what_the_server_did(champion: ServingStore) -> None:
    with live_server(champion.config(log_predictions=False)) as live, connect(live) as client:
        before = client.get_inference_statistics("flights")["model_stats"]
        assert [(s["name"], s["version"], s["inference_count"]) for s in before] == [
            ("flights", "1", 0)
        ]
        client.infer("flights", inputs(ROWS, binary=True))
        client.infer("flights", inputs(ROWS * 2))
        live.client.post("/predict", json={"records": ROWS}).raise_for_status()
        with pytest.raises(InferenceServerException):
            client.infer("flights", inputs(ROWS)[:3])
        (stats,) = client.get_inference_statistics("flights")["model_stats"]
        everything = client.get_inference_statistics()["model_stats"]
    assert everything == [stats]
    assert stats["inference_count"] == 2 + 4 + 2 and stats["execution_count"] == 3
    inference = stats["inference_stats"]
    assert inference["success"]["count"] == 3 and inference["success"]["ns"] > 0
    assert inference["fail"]["count"] == 1 and inference["fail"]["ns"] > 0
    assert inference["compute_infer"]["count"] == 3
    assert 0 < inference["compute_infer"]["ns"] <= inference["success"]["ns"]
    assert stats["last_inference"] > 0
