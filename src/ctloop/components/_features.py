"""The feature store step: ``historical_features``, a point-in-time correct training set
built from an applied feature service.

The output is a ``Dataset`` (an Arrow table) whose schema metadata and artifact
properties name the service and every feature view *version* it was built from
(``features``: name, kind, version, digest), and whose lineage reaches the source data:
each view whose source is a file (or a glob of files) has them snapshotted and recorded
as the step's input ``source_<view>`` (a DuckDB query source is named by its view's
versioned spec). A model that :func:`ctloop.components.fit` trains on that table
records the service in its metadata (``feature_service``), which is what ``ctloop
serve`` reads to fetch the online features itself.

>>> from ctloop import pipeline
>>> from ctloop.components import fit, historical_features
>>> @pipeline
... def train_flights(path: str = "flights.parquet"):
...     train = historical_features(load(path), service="flights_v1")  # doctest: +SKIP
...     fit(train, label="late", estimator="sklearn.linear_model.LogisticRegression")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import FeatureError
from ctloop.features import FeatureService, FeatureView, OnDemandFeatureView
from ctloop.features import get_historical_features as join_features
from ctloop.features._stored import stored_view
from ctloop.pipeline import set_tag, step
from ctloop.pipeline.tracking import current_home, current_workspace, record_input

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FEATURES_KEY", "feature_service_of", "historical_features", "service_lineage"]

#: the schema metadata key (and artifact property) naming what a training set was built from
FEATURES_KEY = "ctloop.features"


@step(cache=False)  # definitions and sources change without the step's inputs changing
def historical_features(
    entities: Any,
    service: str,
    timestamp: str = "event_timestamp",
    full_feature_names: bool = False,
) -> pa.Table:
    """``entities`` (a table with the service's join keys and ``timestamp``) joined with
    the features of the applied feature service ``service`` as they were at each row's
    time; tags ``feature_service`` and ``feature_service_version``.

    >>> historical_features(flights, service="flights_v1")  # doctest: +SKIP
    """
    workspace = current_workspace()
    lineage, views = _resolve(workspace, service, full_feature_names)
    table = join_features(
        entities,
        FeatureService(service, views),
        timestamp=timestamp,
        full_feature_names=full_feature_names,
    )
    for view in _plain(views):
        _record_source(workspace, view)
    set_tag("feature_service", service)
    set_tag("feature_service_version", lineage["version"])
    metadata = dict(table.schema.metadata or {})
    metadata[FEATURES_KEY.encode()] = json.dumps(lineage).encode()
    return table.replace_schema_metadata(metadata)


def service_lineage(
    workspace: Any, service: str, *, full_feature_names: bool = False
) -> dict[str, Any]:
    """What a model of the applied feature service ``service`` needs to know to be served
    (its entity keys, request fields and feature references) and the version of every
    definition it uses.

    >>> service_lineage(workspace, "flights_v1")["entity_keys"]  # doctest: +SKIP
    ['origin']
    """
    return _resolve(workspace, service, full_feature_names)[0]


def _resolve(
    workspace: Any, service: str, full_feature_names: bool
) -> tuple[dict[str, Any], list[FeatureView | OnDemandFeatureView]]:
    records = {(r.kind, r.name): r for r in workspace.features.list()}
    found = records.get(("feature_service", service))
    if found is None:
        applied = sorted(n for (kind, n) in records if kind == "feature_service")
        raise FeatureError(
            f"feature service {service!r} is not applied in this workspace (applied: "
            f"{', '.join(applied) or 'none'}); apply it with `ctloop features apply FILE`"
        )
    specs = {key: r.spec for key, r in records.items()}
    views = [stored_view(name, specs) for name in found.spec["views"]]
    used = {v.name: v for v in views}
    used.update((i.name, i) for v in views if isinstance(v, OnDemandFeatureView) for i in v.inputs)
    keys = dict.fromkeys(k for v in _plain(list(used.values())) for k in v.join_keys)
    request = {
        f.name: f.dtype for v in views if isinstance(v, OnDemandFeatureView) for f in v.request
    }
    lineage = {
        "name": service, "version": found.version, "digest": found.digest,
        "features": list(found.spec["features"]), "full_feature_names": full_feature_names,
        "entity_keys": list(keys), "request": [{"name": n, "dtype": t} for n, t in request.items()],
        "views": [_version(records, v) for v in used.values()],
    }  # fmt: skip
    return lineage, views


def _version(records: dict[tuple[str, str], Any], view: Any) -> dict[str, Any]:
    kind = "on_demand" if isinstance(view, OnDemandFeatureView) else "feature_view"
    record = records[(kind, view.name)]
    return {"name": view.name, "kind": kind, "version": record.version, "digest": record.digest}


def _plain(views: list[Any]) -> list[FeatureView]:
    found: dict[str, FeatureView] = {}
    for view in views:
        inputs = view.inputs if isinstance(view, OnDemandFeatureView) else (view,)
        found.update((v.name, v) for v in inputs)
    return list(found.values())


def _source_files(view: FeatureView) -> list[Path]:
    source = view.source.strip()
    if source.split(None, 1)[0].upper() in {"SELECT", "WITH", "FROM"}:
        return []  # a query: its text is in the view's versioned spec
    if glob.has_magic(source):
        return sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
    return [Path(source)] if Path(source).is_file() else []


def _record_source(workspace: Any, view: FeatureView) -> None:
    """Snapshot the files ``view`` read (content-addressed: unchanged files cost no new
    bytes) and record them as the step's inputs, so lineage reaches the source data."""
    from ctloop.artifacts import snapshot_path

    files = _source_files(view)
    for i, path in enumerate(files):
        record = snapshot_path(path, workspace.artifacts, staging_root=current_home() / "tmp")
        workspace.metadata.put_artifacts([record])
        name = f"source_{view.name}" if len(files) == 1 else f"source_{view.name}_{i}"
        record_input(name, record.id)


def feature_service_of(data: Any) -> dict[str, Any]:
    """``{"feature_service": …}`` for a table :func:`historical_features` made (the
    metadata a model trained on it keeps), else ``{}``.

    >>> feature_service_of(None)
    {}
    """
    schema = getattr(data, "schema", None)
    metadata = getattr(schema, "metadata", None) or {}
    raw = metadata.get(FEATURES_KEY.encode())
    return {} if raw is None else {"feature_service": json.loads(raw)}
