"""The Open Inference Protocol endpoints over HTTP, byte for byte: binary answers,
compression, versions, and the ``{"error": …}`` form of every failure under ``/v2``."""

from __future__ import annotations

import gzip
import struct
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from tests.serve import _models
from tests.serve.conftest import ROW, LiveServer, ServingStore, live_server

INFER = "/v2/models/flights/infer"
PLAIN = {"accept-encoding": "identity"}
TYPES = {"x": "FP64", "n": "INT64", "color": "BYTES", "flag": "BOOL"}
JSON_BODY = {
    "inputs": [{"name": k, "shape": [1], "datatype": TYPES[k], "data": [v]} for k, v in ROW.items()]
}


def binary_request(rows: list[dict[str, Any]], outputs: str = "") -> tuple[bytes, str]:
    """A request with every column as binary data, written out by hand."""
    n = len(rows)
    colors = b"".join(
        struct.pack("<I", len(str(r["color"]).encode())) + str(r["color"]).encode() for r in rows
    )
    raw = [
        struct.pack(f"<{n}d", *(r["x"] for r in rows)),
        struct.pack(f"<{n}q", *(r["n"] for r in rows)),
        colors,
        bytes(int(bool(r["flag"])) for r in rows),
    ]
    types = ["FP64", "INT64", "BYTES", "BOOL"]
    inputs = [
        {
            "name": name,
            "shape": [n],
            "datatype": kind,
            "parameters": {"binary_data_size": len(data)},
        }
        for name, kind, data in zip(["x", "n", "color", "flag"], types, raw)
    ]
    document = orjson.dumps({"id": "raw", "inputs": inputs}).rstrip(b"}") + outputs.encode() + b"}"
    return document + b"".join(raw), str(len(document))


def test_a_binary_request_gets_a_binary_answer(server: LiveServer) -> None:
    rows = [ROW, {**ROW, "x": -2.0, "color": "blue", "flag": False}]
    body, length = binary_request(rows, ', "parameters": {"binary_data_output": true}')
    answer = server.client.post(
        INFER, content=body, headers={"Inference-Header-Content-Length": length, **PLAIN}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-model-version"] == "1" and answer.headers["x-request-id"] == "raw"
    size = int(answer.headers["inference-header-content-length"])
    document = orjson.loads(answer.content[:size])
    (output,) = document["outputs"]
    assert output["parameters"] == {"binary_data_size": 16} and "data" not in output
    predictions = np.frombuffer(answer.content[size:], dtype="<f8")
    np.testing.assert_allclose(predictions, _models.classifier().predict(rows))


def test_a_binary_request_can_ask_for_a_json_answer(server: LiveServer) -> None:
    body, length = binary_request([ROW])
    answer = server.client.post(
        INFER, content=body, headers={"Inference-Header-Content-Length": length, **PLAIN}
    )
    assert answer.status_code == 200, answer.text
    assert "inference-header-content-length" not in answer.headers
    assert answer.json()["outputs"][0]["data"] == pytest.approx(
        _models.classifier().predict([ROW]).tolist()
    )


def test_gzip_both_ways(server: LiveServer) -> None:
    body, length = binary_request([ROW], ', "parameters": {"binary_data_output": true}')
    headers = {
        "Inference-Header-Content-Length": length,
        "Content-Encoding": "gzip",
        "Accept-Encoding": "gzip",
    }
    with httpx.stream(
        "POST", server.url + INFER, content=gzip.compress(body), headers=headers
    ) as answer:
        raw = b"".join(answer.iter_raw())
        assert answer.status_code == 200
        assert answer.headers["content-encoding"] == "gzip"
        size = int(answer.headers["inference-header-content-length"])
    decoded = gzip.decompress(raw)
    assert orjson.loads(decoded[:size])["outputs"][0]["datatype"] == "FP64"
    assert np.frombuffer(decoded[size:], dtype="<f8").shape == (1,)


def test_an_unasked_answer_is_not_compressed(server: LiveServer) -> None:
    answer = server.client.post(INFER, json=JSON_BODY, headers=PLAIN)
    assert answer.status_code == 200, answer.text
    assert "content-encoding" not in answer.headers


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/v2/nothing", 404, "no endpoint GET /v2/nothing"),
        ("POST", "/v2/repository/models/flights/load", 404, "no endpoint POST"),
        ("GET", INFER, 405, "send POST"),
        ("DELETE", "/v2/models/flights", 405, "send GET"),
        ("GET", "/v2/models/cars/config", 404, "'cars' is not served here"),
        ("GET", "/v2/models/flights/versions/2/stats", 404, "version 2"),
        ("GET", "/v2/models/flights/versions/one", 404, "version one"),
        ("GET", "/v2/models/cars/ready", 404, "'cars'"),
    ],
)
def test_every_v2_failure_is_an_error_sentence(
    server: LiveServer, method: str, path: str, status: int, words: str
) -> None:
    answer = server.client.request(method, path)
    assert answer.status_code == status
    document = answer.json()
    assert words in document["error"] and "detail" not in document


def test_routes_outside_v2_answer_in_the_native_form(server: LiveServer) -> None:
    document = server.client.get("/nothing").json()
    assert document["field"] is None and "GET /nothing" in document["error"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "field"),
    [
        (b'{"inputs": [', {}, 400, "body"),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "99"}, 400, "Inference-Header-Content-Length"),
        (b'{"inputs": []}', {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (b'{"inputs": []}', {"Content-Encoding": "gzip"}, 400, "Content-Encoding"),
        (gzip.compress(b" " * 3000, mtime=0), {"Content-Encoding": "gzip"}, 413, "body"),
    ],
)  # fmt: skip
def test_malformed_infer_bodies(
    champion: ServingStore, content: bytes, headers: dict[str, str], status: int, field: str
) -> None:
    with live_server(champion.config(max_body_bytes=2000, log_predictions=False)) as live:
        answer = live.client.post(INFER, content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and answer.json()["error"]


def test_repository_index_reads_its_filter(server: LiveServer) -> None:
    listed = [{"name": "flights", "version": "1", "state": "READY"}]
    assert server.client.post("/v2/repository/index").json() == listed
    assert server.client.post("/v2/repository/index", json={"ready": True}).json() == listed
    bad = server.client.post("/v2/repository/index", json={"ready": "yes"})
    assert bad.status_code == 400 and "ready" in bad.json()["error"]


def test_a_version_is_asked_for_by_number(champion: ServingStore) -> None:
    champion.register(_models.classifier(c=0.1))  # version 2, not routed to
    with live_server(champion.config(log_predictions=False)) as live:
        wrong = live.client.post("/v2/models/flights/versions/2/infer", json=JSON_BODY)
        right = live.client.post("/v2/models/flights/versions/1/infer", json=JSON_BODY)
        metadata = live.client.get("/v2/models/flights/versions/1").json()
    assert wrong.status_code == 404 and "/v2/models/flights/infer" in wrong.json()["error"]
    assert right.status_code == 200 and right.json()["model_version"] == "1"
    assert metadata["versions"] == ["1"]


def test_statistics_count_batched_executions(champion: ServingStore) -> None:
    import asyncio

    config = champion.config(max_batch_size=64, max_wait_ms=20, log_predictions=False)

    async def many(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url) as client:
            answers = await asyncio.gather(*(client.post(INFER, json=JSON_BODY) for _ in range(40)))
        return [a.status_code for a in answers]

    with live_server(config) as live:
        assert asyncio.run(many(live.url)) == [200] * 40
        (stats,) = live.client.get("/v2/models/flights/stats").json()["model_stats"]
    assert stats["inference_count"] == 40
    assert stats["inference_stats"]["success"]["count"] == 40
    assert stats["inference_stats"]["fail"]["count"] == 0
    assert 1 <= stats["execution_count"] < 40  # joined into batches
    assert stats["inference_stats"]["compute_infer"]["count"] == stats["execution_count"]
