"""The binary tensor extension of the Open Inference Protocol (KServe V2), and compressed
bodies, as Triton's clients send and read them.

A request may carry its tensors after the JSON document: the header
``Inference-Header-Content-Length`` gives the JSON document's size, and each input with a
``binary_data_size`` parameter takes that many bytes from what follows, in input order.
Tensors are little-endian and row major; a BOOL element is one byte (0 or 1); a BYTES
element is a 4-byte little-endian length followed by that many bytes. Answers use the
same layout when the client asks for binary outputs. Bodies may be compressed with
``Content-Encoding: gzip`` or ``deflate`` (zlib), and answers are when the client sends
``Accept-Encoding``.

>>> decode_tensor("c", "BYTES", b"\\x02\\x00\\x00\\x00hi\\x00\\x00\\x00\\x00", 2)
['hi', '']
>>> decode_tensor("f", "BOOL", b"\\x01\\x00", 2)
[True, False]
>>> encode_tensor(np.array([1.5]))
('FP64', b'\\x00\\x00\\x00\\x00\\x00\\x00\\xf8?')
"""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import Any

import numpy as np

from ctloop.errors import PredictionRequestError

__all__ = [
    "HEADER_LENGTH",
    "compress",
    "decode_tensor",
    "decompress",
    "encode_tensor",
    "split_body",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
"""The HTTP header giving the size of the JSON document before the binary tensors."""

_NUMERIC = {
    "BOOL": "u1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
"""The little-endian numpy type of each fixed-size tensor type."""

_SUPPORTED = ", ".join([*_NUMERIC, "BYTES"])


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON document and the binary tensor data of a request ``body``, split where
    ``header_length`` (the ``Inference-Header-Content-Length`` header) says."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not text.isdigit() or int(text) > len(body):
        raise PredictionRequestError(
            f"the {HEADER_LENGTH} header is {header_length!r}, which is not a size between 0 "
            f"and the body's {len(body)} bytes; send the byte length of the JSON document",
            field=HEADER_LENGTH,
        )
    size = int(text)
    return body[:size], body[size:]


def decode_tensor(name: str, datatype: Any, raw: bytes, count: int) -> list[Any]:
    """The ``count`` elements of tensor ``name`` sent as ``raw`` bytes of ``datatype``,
    as plain Python values (BYTES as text)."""
    if datatype == "BYTES":
        return _decode_bytes(name, raw, count)
    code = _NUMERIC.get(datatype) if isinstance(datatype, str) else None
    if code is None:
        raise PredictionRequestError(
            f"tensor {name!r} has datatype {datatype!r}, which ctloop cannot read as binary "
            f"data; send one of {_SUPPORTED}",
            field=name,
        )
    dtype = np.dtype(code)
    if len(raw) != count * dtype.itemsize:
        raise PredictionRequestError(
            f"tensor {name!r} has {len(raw)} bytes of binary data, but {count} {datatype} "
            f"elements take {count * dtype.itemsize}; send shape and binary_data_size that agree",
            field=name,
        )
    values = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL":
        if np.any(values > 1):
            raise PredictionRequestError(
                f"tensor {name!r} is BOOL but has a byte other than 0 or 1", field=name
            )
        values = values.astype(bool)
    decoded: list[Any] = values.tolist()
    return decoded


def _decode_bytes(name: str, raw: bytes, count: int) -> list[Any]:
    values: list[Any] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _bytes_error(name, f"ends inside the length of element {len(values)}")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise _bytes_error(name, f"ends inside element {len(values)} ({size} bytes)")
        element = raw[offset : offset + size]
        offset += size
        try:
            values.append(element.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _bytes_error(name, f"has element {len(values)} that is not UTF-8 text") from exc
    if len(values) != count:
        raise _bytes_error(name, f"holds {len(values)} elements, but its shape says {count}")
    return values


def _bytes_error(name: str, problem: str) -> PredictionRequestError:
    return PredictionRequestError(
        f"the binary data of BYTES tensor {name!r} {problem}; send each element as a "
        "4-byte little-endian length followed by its UTF-8 bytes",
        field=name,
    )


def encode_tensor(values: np.ndarray) -> tuple[str, bytes]:
    """The V2 datatype and binary form of an answer tensor: FP64, INT64, BOOL or BYTES."""
    kind = values.dtype.kind
    if kind == "f":
        return "FP64", np.ascontiguousarray(values, dtype="<f8").tobytes()
    if kind in "iu":
        return "INT64", np.ascontiguousarray(values, dtype="<i8").tobytes()
    if kind == "b":
        return "BOOL", np.ascontiguousarray(values, dtype="u1").tobytes()
    parts = []
    for element in values.astype(str).ravel().tolist():
        encoded = element.encode("utf-8")
        parts.append(struct.pack("<I", len(encoded)))
        parts.append(encoded)
    return "BYTES", b"".join(parts)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` decoded from its ``Content-Encoding`` (gzip, deflate or identity), at
    most ``limit`` bytes once decoded."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return body
    if name not in ("gzip", "deflate"):
        raise PredictionRequestError(
            f"the request's Content-Encoding is {encoding!r}, which this server cannot "
            "read; send gzip, deflate or an uncompressed body",
            status=415,
            field="Content-Encoding",
        )
    # gzip wraps the zlib stream in its own header; wbits tells zlib which to expect
    decoder = zlib.decompressobj(wbits=31 if name == "gzip" else 15)
    try:
        decoded = decoder.decompress(body, limit + 1)
        complete = decoder.eof
    except zlib.error as exc:
        raise PredictionRequestError(
            f"the request body is not valid {name} data ({exc}); compress the whole body "
            f"or drop the Content-Encoding header",
            field="Content-Encoding",
        ) from exc
    if len(decoded) > limit:
        raise PredictionRequestError(
            f"the {name} request body expands to more than the server's limit of {limit} "
            "bytes; send fewer rows per request or start the server with a larger "
            "--max-body-bytes",
            status=413,
            field="body",
        )
    if not complete or decoder.unused_data:
        problem = "is cut short" if not complete else "has bytes after its end"
        raise PredictionRequestError(
            f"the {name} request body {problem}; send the whole body compressed once",
            field="Content-Encoding",
        )
    return decoded


def compress(body: bytes, accept_encoding: str | None) -> tuple[bytes, str | None]:
    """``body`` compressed as the client's ``Accept-Encoding`` prefers (gzip, then
    deflate), with the ``Content-Encoding`` to send; unchanged with ``None`` otherwise."""
    accepted = _accepted(accept_encoding or "")
    if "gzip" in accepted:
        return gzip.compress(body, compresslevel=6, mtime=0), "gzip"
    if "deflate" in accepted:
        return zlib.compress(body, 6), "deflate"
    return body, None


def _accepted(header: str) -> set[str]:
    names: set[str] = set()
    for item in header.split(","):
        name, _, params = item.partition(";")
        quality = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
        try:
            wanted = float(quality) > 0
        except ValueError:
            wanted = False
        if wanted:
            names.add(name.strip().lower())
    return names
