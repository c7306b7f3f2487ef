"""The binary tensor extension and compressed bodies of the Open Inference Protocol, byte
by byte (expectations written out by hand, or read back with Triton's own decoder)."""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from ctloop.errors import PredictionRequestError
from ctloop.serve import _protocols as p
from ctloop.serve import _v2_binary as b


def header(document: bytes, raw: bytes) -> tuple[bytes, str]:
    return document + raw, str(len(document))


@pytest.mark.parametrize(
    ("datatype", "raw", "values"),
    [
        ("FP64", struct.pack("<2d", 1.5, -2.0), [1.5, -2.0]),
        ("FP32", struct.pack("<2f", 0.5, 4.0), [0.5, 4.0]),
        ("INT64", struct.pack("<2q", -3, 7), [-3, 7]),
        ("INT32", struct.pack("<2i", 1, -1), [1, -1]),
        ("UINT8", b"\x00\xff", [0, 255]),
        ("BOOL", b"\x01\x00", [True, False]),
        ("BYTES", b"\x03\x00\x00\x00red\x00\x00\x00\x00", ["red", ""]),
    ],
)
def test_binary_tensors_decode_to_plain_values(datatype: str, raw: bytes, values: list) -> None:
    decoded = b.decode_tensor("t", datatype, raw, 2)
    assert decoded == values
    assert [type(v) for v in decoded] == [type(v) for v in values]


def test_bytes_tensors_match_tritons_encoding() -> None:
    texts = np.array(["naïve", "", "a" * 300], dtype=object)
    raw = serialize_byte_tensor(texts).item()
    assert b.decode_tensor("c", "BYTES", raw, 3) == ["naïve", "", "a" * 300]
    datatype, encoded = b.encode_tensor(np.array(["yes", "naïve"]))
    assert datatype == "BYTES"
    assert deserialize_bytes_tensor(encoded).tolist() == [b"yes", "naïve".encode()]


@pytest.mark.parametrize(
    ("values", "datatype", "raw"),
    [
        (np.array([0.25, 1.0]), "FP64", struct.pack("<2d", 0.25, 1.0)),
        (np.array([0.5], dtype=np.float32), "FP64", struct.pack("<d", 0.5)),
        (np.array([3, -1]), "INT64", struct.pack("<2q", 3, -1)),
        (np.array([True, False]), "BOOL", b"\x01\x00"),
    ],
)
def test_answer_tensors_encode_little_endian(values: np.ndarray, datatype: str, raw: bytes) -> None:
    assert b.encode_tensor(values) == (datatype, raw)


@pytest.mark.parametrize(
    ("datatype", "raw", "count", "words"),
    [
        ("FP64", b"\x00" * 12, 2, "12 bytes"),
        ("BOOL", b"\x02", 1, "other than 0 or 1"),
        ("BF16", b"\x00\x00", 1, "cannot read"),
        (None, b"", 0, "cannot read"),
        ("BYTES", b"\x05\x00", 1, "inside the length"),
        ("BYTES", b"\x05\x00\x00\x00ab", 1, "inside element 0"),
        ("BYTES", b"\x01\x00\x00\x00a", 2, "holds 1 elements"),
        ("BYTES", b"\x01\x00\x00\x00\xff", 1, "not UTF-8"),
    ],
)
def test_bad_binary_tensors_are_named(
    datatype: str | None, raw: bytes, count: int, words: str
) -> None:
    with pytest.raises(PredictionRequestError, match=words) as raised:
        b.decode_tensor("t", datatype, raw, count)
    assert raised.value.field == "t" and raised.value.status == 400


def test_the_header_length_splits_the_body() -> None:
    assert b.split_body(b'{"a": 1}xyz', "8") == (b'{"a": 1}', b"xyz")
    assert b.split_body(b'{"a": 1}', None) == (b'{"a": 1}', b"")
    for bad in ("9", "-1", "eight"):
        with pytest.raises(PredictionRequestError) as raised:
            b.split_body(b'{"a": 1}', bad)
        assert raised.value.field == b.HEADER_LENGTH


def test_v2_request_with_binary_and_json_tensors() -> None:
    document = (
        b'{"id": "r", "inputs": ['
        b'{"name": "x", "shape": [2, 1], "datatype": "FP64", "parameters": {"binary_data_size": 16}},'
        b'{"name": "c", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},'
        b'{"name": "f", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}],'
        b' "outputs": [{"name": "predictions", "parameters": {"binary_data": true}}]}'
    )
    body, length = header(document, struct.pack("<2d", 1.5, 2.5) + b"\x00\x01")
    parsed = p.parse_v2(body, header_length=length)
    assert parsed.data == {"x": [1.5, 2.5], "c": ["a", "b"], "f": [False, True]}
    assert parsed.request_id == "r" and parsed.binary_outputs is True


@pytest.mark.parametrize(
    ("parameters", "outputs", "binary"),
    [
        ("", "", False),
        (', "parameters": {"binary_data_output": true}', "", True),
        (
            ', "parameters": {"binary_data_output": true}',
            ', "outputs": [{"name": "predictions"}]',
            True,
        ),
        (
            ', "parameters": {"binary_data_output": true}',
            ', "outputs": [{"name": "predictions", "parameters": {"binary_data": false}}]',
            False,
        ),
    ],
)
def test_binary_outputs_follow_the_output_then_the_request(
    parameters: str, outputs: str, binary: bool
) -> None:
    body = (
        '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]'
        + parameters
        + outputs
        + "}"
    )
    assert p.parse_v2(body.encode()).binary_outputs is binary


@pytest.mark.parametrize(
    ("tensors", "raw", "field", "words"),
    [
        ('{"name": "x", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}',
         b"\x00" * 12, b.HEADER_LENGTH, "4 bytes"),
        ('{"name": "x", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 16}}',
         b"\x00" * 8, "x", "only 8 bytes"),
        ('{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0], "parameters": {"binary_data_size": 8}}',
         b"\x00" * 8, "x", "both"),
        ('{"name": "x", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": "8"}}',
         b"\x00" * 8, "x", "binary_data_size"),
        ('{"name": "x", "shape": [1], "datatype": "FP64", "parameters": [8]}',
         b"", "x", "parameters"),
        ('{"name": "x", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 8}}',
         b"\x00" * 8, "x", "16"),
    ],
)  # fmt: skip
def test_binary_request_mistakes_name_the_part(
    tensors: str, raw: bytes, field: str, words: str
) -> None:
    body, length = header(('{"inputs": [' + tensors + "]}").encode(), raw)
    with pytest.raises(PredictionRequestError, match=words) as raised:
        p.parse_v2(body, header_length=length)
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (', "outputs": [{"name": "probability"}]', "'probability'"),
        (', "outputs": {"name": "predictions"}', "list of objects"),
        (
            ', "outputs": [{"name": "predictions", "parameters": {"binary_data": 1}}]',
            "true or false",
        ),
        (', "parameters": {"binary_data_output": "yes"}', "true or false"),
    ],
)
def test_requested_outputs_are_checked(extra: str, words: str) -> None:
    body = (
        '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]' + extra + "}"
    )
    with pytest.raises(PredictionRequestError, match=words):
        p.parse_v2(body.encode())


def test_binary_answer_gives_the_size_of_its_data() -> None:
    document, raw = p.encode_v2_binary("m", 2, "q", np.array([0.25, 0.5]))
    assert document == {
        "model_name": "m",
        "model_version": "2",
        "id": "q",
        "outputs": [
            {
                "name": "predictions",
                "shape": [2],
                "datatype": "FP64",
                "parameters": {"binary_data_size": 16},
            }
        ],
    }
    assert raw == struct.pack("<2d", 0.25, 0.5)


def test_compressed_bodies_are_read_within_the_limit() -> None:
    body = b'{"inputs": []}' * 10
    assert b.decompress(gzip.compress(body), "gzip", 1000) == body
    assert b.decompress(zlib.compress(body), "Deflate", 1000) == body
    assert b.decompress(body, None, 10) == body  # plain bodies were limited when read
    assert b.decompress(body, "identity", 10) == body
    with pytest.raises(PredictionRequestError) as large:
        b.decompress(gzip.compress(b"\x00" * 10_000), "gzip", 1000)
    assert large.value.status == 413
    with pytest.raises(PredictionRequestError) as unknown:
        b.decompress(body, "br", 1000)
    assert unknown.value.status == 415 and "gzip, deflate" in str(unknown.value)
    for broken in (b"not gzip", gzip.compress(body)[:-12], gzip.compress(body) + b"xx"):
        with pytest.raises(PredictionRequestError) as bad:
            b.decompress(broken, "gzip", 1000)
        assert bad.value.status == 400 and bad.value.field == "Content-Encoding"


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        ("gzip", "gzip"),
        ("deflate, gzip;q=0.5", "gzip"),
        ("gzip;q=0, deflate", "deflate"),
        ("br", None),
        (None, None),
    ],
)
def test_answers_are_compressed_as_the_client_accepts(
    accept: str | None, encoding: str | None
) -> None:
    body = b'{"outputs": []}'
    compressed, used = b.compress(body, accept)
    assert used == encoding
    decoded = {"gzip": gzip.decompress, "deflate": zlib.decompress, None: bytes}[used](compressed)
    assert decoded == body
