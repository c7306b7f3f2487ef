"""Request bodies as JSON documents: parsed with orjson, nested at most
:data:`MAX_DEPTH` levels, and, where a protocol allows it, with the ``NaN``,
``Infinity`` and ``-Infinity`` tokens that Python's ``json`` writes (MLflow's client).

A client's mistake is a :class:`~ctloop.errors.PredictionRequestError` (400) naming the
body, never an error from whatever later walks the document:

>>> decode_json(b'{"x": [1, 2]}')
{'x': [1, 2]}
>>> decode_json(b"[NaN]", non_finite=True)
[nan]
>>> decode_json(b"[" * 100 + b"]" * 100)
Traceback (most recent call last):
...
ctloop.errors.PredictionRequestError: the request body nests arrays or objects more than 64 levels deep; send records, columns or tensors of plain values
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ctloop.errors import PredictionRequestError

__all__ = ["MAX_DEPTH", "decode_json"]

MAX_DEPTH = 64
"""How many levels of arrays and objects a request may nest (the protocols' own
documents nest at most five); a deeper one is refused before anything walks it."""

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NON_FINITE = re.compile(rb"NaN|Infinity")


def decode_json(body: bytes, *, non_finite: bool = False) -> Any:
    """The JSON document in ``body``; with ``non_finite``, ``NaN`` reads as a missing
    value (a float NaN) and ``Infinity`` / ``-Infinity`` as infinite floats.

    orjson reads every strictly valid body; only a body it refuses that holds one of
    those tokens is read again, with Python's ``json``, so valid bodies stay fast."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _decode_refused(body, exc, non_finite)
    brackets = body.translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH:
        return document  # no more openings than levels allowed (a small request)
    _, left = _peel(brackets)
    if left:  # deep, or brackets inside strings make the quick count unsure
        _check_depth(document)
    return document


def _peel(brackets: bytes) -> tuple[int, bytes]:
    """Remove the innermost pairs of the bracket sequence ``brackets``, one level per
    round, until nothing is left, a round removes nothing (the brackets do not pair
    up), or :data:`MAX_DEPTH` rounds are done: the rounds, and what is left.

    Each round is one pass in C, so even a body made of brackets costs at most
    :data:`MAX_DEPTH` passes."""
    rounds = 0
    while brackets and rounds < MAX_DEPTH:
        inner = _INNERMOST.sub(b"", brackets)
        if len(inner) == len(brackets):
            break
        brackets, rounds = inner, rounds + 1
    return rounds, brackets


def _check_depth(document: Any) -> None:
    """Raise the 400 when ``document`` nests deeper than :data:`MAX_DEPTH` (a walk
    with its own stack, so the document's depth is not Python's)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            raise _too_deep()
        children = node.values() if type(node) is dict else node
        stack.extend((c, level + 1) for c in children if type(c) is list or type(c) is dict)


def _decode_refused(body: bytes, exc: orjson.JSONDecodeError, non_finite: bool) -> Any:
    """A body orjson refused: too deep, read by Python's ``json`` (non-finite
    numbers), or not JSON. Python's parser recurses once per level, so the depth is
    checked first, on the body's structure with its strings taken out."""
    import json

    rounds, left = _peel(_STRING.sub(b"", body).translate(None, _NOT_BRACKETS))
    if left and rounds == MAX_DEPTH:
        raise _too_deep() from exc
    if left or not (non_finite and _NON_FINITE.search(body)):
        raise _not_json(exc) from exc
    try:
        return json.loads(body)
    except ValueError as second:
        raise _not_json(second) from second


def _not_json(exc: Exception) -> PredictionRequestError:
    return PredictionRequestError(
        f"the request body is not valid JSON ({exc}); send a JSON object", field="body"
    )


def _too_deep() -> PredictionRequestError:
    return PredictionRequestError(
        f"the request body nests arrays or objects more than {MAX_DEPTH} levels deep; "
        "send records, columns or tensors of plain values",
        field="body",
    )
