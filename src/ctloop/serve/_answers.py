"""How a prediction route answers: it starts with :func:`read_request` (the request id,
the clock and the body, within the size limit) and ends with :func:`answered`, which
counts the request and sends its :class:`Answer`. A failure in between is raised, and
the exception handlers of :mod:`ctloop.serve._errors` answer it with the same request id
and the same counting.

>>> body = await read_request(request, "native", limit=10_000_000)  # doctest: +SKIP
>>> return answered(metrics, request, Answer({"predictions": [1]}, version=3))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ctloop.errors import PredictionRequestError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ctloop.serve._metrics import ServingMetrics

__all__ = ["Answer", "answered", "header", "json_answer", "new_request_id", "plain", "read_request"]


@dataclass
class Answer:
    """A handler's result: the JSON ``document``, the model ``version`` that made it, and
    what to run after the answer is sent (the shadow call). ``body``, when given, is sent
    instead of the document (a binary or compressed answer), with ``headers`` and
    ``media_type``."""

    document: dict[str, Any]
    version: int | None = None
    after: Callable[[], Awaitable[None]] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


async def read_request(request: Request, protocol: str, limit: int) -> bytes:
    """Start answering ``request`` with ``protocol`` (the metrics' label): note the time
    and the request id (the client's ``x-request-id`` or a new one) on ``request.state``,
    and read the body, refusing one over ``limit`` bytes with a 413."""
    s = request.state
    s.started = time.perf_counter()
    s.protocol = protocol
    s.request_id = header(request, b"x-request-id") or new_request_id()
    return await _read_body(request, limit)


def header(request: Request, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case, as ASGI servers give header
    names) of ``request``, or ``None``: what ``request.headers.get`` answers, without
    building the headers' mapping or raising and catching a ``KeyError`` for a header
    the request does not have."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def new_request_id() -> str:
    """A random (version 4) UUID as 32 hex digits, as ``uuid.uuid4().hex`` writes it
    (from ``os.urandom``, read 256 ids at a time), without building a ``UUID``.

    >>> import uuid
    >>> rid = new_request_id()
    >>> len(rid), uuid.UUID(rid).version, uuid.UUID(rid).variant == uuid.RFC_4122
    (32, 4, True)
    """
    with _RANDOM_LOCK:
        if not _RANDOM:  # one system call for 256 ids: each call can cost a lot in a sandbox
            random = os.urandom(16 * 256)
            _RANDOM.extend(random[i : i + 16] for i in range(0, len(random), 16))
        chunk = _RANDOM.pop()
    n = int.from_bytes(chunk, "big")
    n = (n & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
    return f"{n:032x}"


_RANDOM: list[bytes] = []
_RANDOM_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_RANDOM.clear)  # a forked worker draws its own ids


def answered(
    metrics: ServingMetrics, request: Request, answer: Answer, status: int = 200
) -> Response:
    """Count the request begun by :func:`read_request` and send ``answer``."""
    s = request.state
    request_id = s.request_id
    if status == 200:
        document = answer.document
        request_id = str(document.get("request_id") or document.get("id") or request_id)
    label = "" if answer.version is None else str(answer.version)
    metrics.observe_request(s.protocol, status, label, time.perf_counter() - s.started)
    return json_answer(answer, status, request_id)


def json_answer(answer: Answer, status: int, request_id: str) -> Response:
    """``answer`` as a response with ``x-request-id`` (and ``x-model-version``)."""
    from starlette.background import BackgroundTask
    from starlette.responses import Response

    headers = {**answer.headers, "x-request-id": request_id}
    if answer.version is not None:
        headers["x-model-version"] = str(answer.version)
    body = answer.body
    if body is None:
        body = orjson.dumps(answer.document, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(
        body,
        status_code=status,
        media_type=answer.media_type,
        headers=headers,
        background=None if answer.after is None else BackgroundTask(answer.after),
    )


def plain(document: Any, status: int = 200) -> Response:
    """A JSON response of ``document``."""
    from starlette.responses import Response

    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes:
    length = header(request, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(size: int, limit: int) -> PredictionRequestError:
    return PredictionRequestError(
        f"the request body has {size} bytes or more, over the server's limit of {limit}; "
        "send fewer rows per request or start the server with a larger --max-body-bytes",
        status=413,
        field="body",
    )
