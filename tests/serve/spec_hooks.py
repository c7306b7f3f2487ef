"""Schemathesis hooks for the prediction server's OpenAPI document: the constraints that
JSON Schema cannot state, taught to the generator.

The document marks them (:data:`ctloop.serve._openapi.SAME_LENGTH`): the lists of a
``columns`` object hold one value per row each, and so do the tensors of a V2 request
(each as long as its shape says). A generated request that is meant to be valid
(*positive*) but breaks one of them is dropped; requests meant to be invalid are kept,
so the server must still refuse them.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return True
    return rows_agree(case.body)


def rows_agree(body: Any) -> bool:
    """Whether every set of per-row lists in ``body`` has one length."""
    if not isinstance(body, dict):
        return True
    tensors = body.get("inputs")
    if isinstance(tensors, list) and all(isinstance(t, dict) and "shape" in t for t in tensors):
        lengths = {len(t["data"]) for t in tensors} | {t["shape"][0] for t in tensors}
        return len(lengths) == 1
    for key in ("columns", "instances", "inputs"):
        columns = body.get(key)
        if isinstance(columns, dict) and len({len(v) for v in columns.values()}) > 1:
            return False
    return True
