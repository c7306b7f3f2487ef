"""The KServe V2 endpoints spoken to by the real Triton HTTP client (JSON tensors)."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.serve import _models
from tests.serve.conftest import LiveServer

ROWS = [
    {"x": 0.1, "n": 3, "color": "red", "flag": True},
    {"x": -1.5, "n": 7, "color": "blue", "flag": False},
]


@pytest.fixture
def client(server: LiveServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


def tensor(name: str, values: list[object], datatype: str) -> triton.InferInput:
    array = np.array(values, dtype=object if datatype == "BYTES" else None)
    if datatype == "INT64":
        array = array.astype(np.int64)
    given = triton.InferInput(name, [len(values)], datatype)
    given.set_data_from_numpy(array, binary_data=False)
    return given


def inputs(rows: list[dict[str, object]]) -> list[triton.InferInput]:
    types = {"x": "FP64", "n": "INT64", "color": "BYTES", "flag": "BOOL"}
    return [tensor(name, [r[name] for r in rows], kind) for name, kind in types.items()]


def test_health_and_metadata_through_triton(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("flights")
    metadata = client.get_model_metadata("flights")
    assert metadata["name"] == "flights" and metadata["versions"] == ["1"]
    assert [i["datatype"] for i in metadata["inputs"]] == ["FP64", "INT64", "BYTES", "BOOL"]


def test_infer_through_triton_matches_the_model(client: triton.InferenceServerClient) -> None:
    wanted = [triton.InferRequestedOutput("predictions", binary_data=False)]
    result = client.infer("flights", inputs(ROWS), outputs=wanted, request_id="t1")
    got = result.as_numpy("predictions")
    assert got.shape == (2,)
    np.testing.assert_allclose(got, _models.classifier().predict(ROWS))
    response = result.get_response()
    assert response["id"] == "t1" and response["model_version"] == "1"


def test_triton_sees_errors_naming_the_column(client: triton.InferenceServerClient) -> None:
    bad = inputs(ROWS)[:3]  # no 'flag'
    with pytest.raises(InferenceServerException, match="flag"):
        client.infer("flights", bad)
    with pytest.raises(InferenceServerException, match="not served here"):
        client.infer("cars", inputs(ROWS))
