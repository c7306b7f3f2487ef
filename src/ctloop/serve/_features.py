"""Online features for a served model trained on a feature service.

A model whose metadata names a ``feature_service`` (one fitted on the output of the
``historical_features`` step) is sent entity keys and request-time fields only; before
its input is checked against the signature, the server reads the service's online
features for those keys (one read of the online store for all of them) and builds the
rows the model was trained on. The prepared rows, features included, are what the
prediction log records, so drift and skew monitoring see the served feature values.

>>> with_online_features(workspace, model, [{"origin": "EWR", "sched_dep_time": 700}])  # doctest: +SKIP
[{'temp': 2.0, 'visib': 10, 'sched_dep_time': 700, 'cold_morning': True}]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctloop.errors import FeatureError, SignatureError

if TYPE_CHECKING:
    from ctloop.artifacts.model import Model

__all__ = ["served_inputs", "with_online_features"]


def served_inputs(model: Model) -> dict[str, Any] | None:
    """What a client sends a model trained on a feature service: its ``entity_keys``
    and ``request`` fields (``None`` for a model sent its features directly)."""
    service = model.metadata.get("feature_service")
    if not isinstance(service, Mapping):
        return None
    return {"entity_keys": list(service["entity_keys"]), "request": list(service["request"])}


def _records(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [dict(row) if isinstance(row, Mapping) else row for row in data]
    if isinstance(data, Mapping):
        names = list(data)
        columns = [list(data[n]) for n in names]
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    return list(data.to_dict(orient="records"))  # a DataFrame (CSV bodies)


def with_online_features(workspace: Any, model: Model, data: Any) -> Any:
    """``data`` (records, columns or a DataFrame of entity keys and request fields) as
    records of the model's inputs, its features read online; ``data`` itself for a
    model not trained on a feature service. A missing key or field is a
    :class:`SignatureError` naming it."""
    service = model.metadata.get("feature_service")
    if not isinstance(service, Mapping):
        return data
    from ctloop.features._online import online_features
    from ctloop.features._stored import select_features

    rows = _records(data)
    sent = [*service["entity_keys"], *(f["name"] for f in service["request"])]
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise SignatureError(f"row {i} is not an object of column values", field="body")
        absent = [name for name in sent if name not in row]
        if absent:
            raise SignatureError(
                f"row {i} has no {absent[0]!r}; a model of feature service "
                f"{service['name']!r} takes {', '.join(sent)}",
                field=absent[0],
            )
    try:
        selection = select_features(workspace, service["name"])
        columns = online_features(
            workspace, selection, rows, full_feature_names=bool(service["full_feature_names"])
        )
    except FeatureError as exc:
        raise SignatureError(str(exc), field="body") from exc
    inputs = [c.name for c in model.signature.inputs]
    missing = [name for name in inputs if name not in columns]
    if missing:
        raise SignatureError(
            f"the model takes {missing[0]!r}, which is neither a feature of service "
            f"{service['name']!r} nor sent; send it with each row",
            field=missing[0],
        )
    return [{name: columns[name][i] for name in inputs} for i in range(len(rows))]
