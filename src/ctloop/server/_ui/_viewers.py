"""What an artifact's page shows below its metadata, by the artifact's type: the first
rows and schema of a table, statistics per column, anomalies, a drift report, an
evaluation overall and per slice, a model's flavor, signature and requirements; every
HTML file of an artifact (a report) inline in a sandboxed frame.

Each viewer reads the artifact's files by their recorded digests, as the API's download
route does, and parses them as data: no class named in the artifact is imported and no
stored code runs.

>>> record_kind({"record_type": "Evaluation"}, "Record"), record_kind({}, "Dataset")
('Evaluation', 'Dataset')
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError

if TYPE_CHECKING:
    from ctloop.store.records import ArtifactRecord
    from ctloop.store.workspace import Workspace

__all__ = ["View", "html_files", "record_kind", "statistics_of", "view_of"]

View = dict[str, Any]
#: rows of a table's preview
PREVIEW_ROWS = 20
#: a table file above this size is not read for its preview (its schema still is)
PREVIEW_MAX_BYTES = 256 * 1024 * 1024


def record_kind(properties: dict[str, Any], artifact_type: str) -> str:
    """The kind a viewer is chosen by: a record's own type, else the artifact's."""
    return str(properties.get("record_type") or artifact_type)


def view_of(workspace: Workspace, artifact: ArtifactRecord) -> View:
    """The viewer of ``artifact``: ``{"kind": …, …}`` for the template, or a sentence of
    why there is none (a file missing, a format this server cannot read)."""
    kind = record_kind(artifact.properties, artifact.type)
    viewer = _VIEWERS.get(kind)
    try:
        if viewer is not None:
            return viewer(workspace, artifact)
        if _record_file(artifact) is not None:
            return {"kind": "json", "title": kind, "data": _pretty(_record(workspace, artifact))}
    except (CtloopError, ValueError, KeyError, TypeError) as exc:
        return {"kind": "none", "why": f"this {kind} artifact could not be read: {exc}"}
    return {"kind": "none", "why": ""}


def html_files(artifact: ArtifactRecord) -> list[str]:
    """The paths of the artifact's HTML files (reports), shown inline."""
    return [f.path for f in artifact.files if f.path.lower().endswith((".html", ".htm"))]


def _bytes(workspace: Workspace, artifact: ArtifactRecord, path: str) -> bytes:
    for entry in artifact.files:
        if entry.path == path or entry.path.endswith("/" + path):
            return workspace.artifacts.get_bytes(entry.digest)
    raise KeyError(f"it has no file {path!r}")


def _record_file(artifact: ArtifactRecord) -> str | None:
    name = artifact.properties.get("file")
    return str(name) if name else None


def _record(workspace: Workspace, artifact: ArtifactRecord) -> Any:
    name = _record_file(artifact)
    if name is None:
        raise KeyError("it names no record file in its properties")
    text = _bytes(workspace, artifact, name).decode()
    if artifact.properties.get("encoding") == "yaml" or name.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)[:200_000]


def _table(workspace: Workspace, artifact: ArtifactRecord) -> View:
    import io

    import pyarrow.parquet as pq

    entry = next((f for f in artifact.files if f.path.endswith(".parquet")), None)
    if entry is None:
        return {"kind": "none", "why": "this table has no Parquet file"}
    parquet = pq.ParquetFile(io.BytesIO(workspace.artifacts.get_bytes(entry.digest)))
    schema = parquet.schema_arrow
    rows: list[list[str]] = []
    if entry.size <= PREVIEW_MAX_BYTES and parquet.metadata.num_rows:
        batch = next(parquet.iter_batches(batch_size=PREVIEW_ROWS))
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        rows = [[_cell(c[r]) for c in columns] for r in range(batch.num_rows)]
    return {
        "kind": "table",
        "rows_total": parquet.metadata.num_rows,
        "schema": [(f.name, str(f.type), "yes" if f.nullable else "no") for f in schema],
        "columns": schema.names,
        "rows": rows,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _statistics(workspace: Workspace, artifact: ArtifactRecord) -> View:
    stats = statistics_of(workspace, artifact)
    columns = []
    for column in stats.columns:
        numeric = column.numeric
        shown = (
            ("",) * 4 if numeric is None else (numeric.mean, numeric.std, numeric.min, numeric.max)
        )
        columns.append((column.name, column.type, column.count, column.missing, *map(_cell, shown)))
    return {
        "kind": "statistics",
        "rows_total": stats.num_rows,
        "columns": columns,
        "report": f"/artifacts/{artifact.id}/report",
    }


def statistics_of(workspace: Workspace, artifact: ArtifactRecord) -> Any:
    """The ``DatasetStatistics`` of a Statistics artifact."""
    from ctloop.data._statistics import DatasetStatistics

    return DatasetStatistics.from_dict(_record(workspace, artifact))


def _anomalies(workspace: Workspace, artifact: ArtifactRecord) -> View:
    found = _record(workspace, artifact).get("anomalies", [])
    keys = list(dict.fromkeys(k for a in found for k in a))
    rows = [[_cell(a.get(k)) for k in keys] for a in found]
    return {"kind": "anomalies", "keys": keys, "rows": rows}


def _drift(workspace: Workspace, artifact: ArtifactRecord) -> View:
    data = _record(workspace, artifact)
    columns = [
        (
            c["column"],
            c["type"],
            c["test"],
            _cell(c["statistic"]),
            _cell(c.get("p_value")),
            _cell(c["threshold"]),
            bool(c["drifted"]),
        )
        for c in data.get("columns", [])
    ]
    return {
        "kind": "drift",
        "drifted": bool(data.get("drifted")),
        "share": data.get("drifted_share", 0.0),
        "limit": data.get("drift_share", 0.0),
        "columns": sorted(columns, key=lambda c: (not c[6], c[0])),
        "skipped": [tuple(s) for s in data.get("skipped", [])],
    }


def _evaluation(workspace: Workspace, artifact: ArtifactRecord) -> View:
    data = _record(workspace, artifact)
    baseline = (data.get("baseline") or {}).get("metrics", {})
    overall = [
        (key, _cell(value), _cell(baseline.get(key)) if baseline else "")
        for key, value in sorted(data.get("metrics", {}).items())
    ]
    slices = []
    for name, results in sorted(data.get("slices", {}).items()):
        keys = list(dict.fromkeys(k for r in results for k in r.get("metrics", {})))
        rows = [
            [r["value"], r["rows"], *(_cell(r.get("metrics", {}).get(k)) for k in keys)]
            + [r.get("skipped") or ""]
            for r in results
        ]
        slices.append({"name": name, "keys": keys, "rows": rows})
    attributions = [
        (a.get("feature", ""), a.get("metric", ""), _cell(a.get("mean_drop")))
        for a in data.get("attributions", [])
    ]
    return {
        "kind": "evaluation",
        "facts": [
            ("task", data.get("task")),
            ("label", data.get("label")),
            ("rows", data.get("rows")),
        ],
        "overall": overall,
        "has_baseline": bool(baseline),
        "slices": slices,
        "attributions": attributions,
    }


def _model(workspace: Workspace, artifact: ArtifactRecord) -> View:
    described = json.loads(_bytes(workspace, artifact, "model.json"))
    signature = described.get("signature", {})
    return {
        "kind": "model",
        "facts": [
            ("flavor", described.get("flavor")),
            ("task", described.get("task")),
            ("made with ctloop", described.get("ctloop_version")),
        ],
        "inputs": [(c["name"], c["type"]) for c in signature.get("inputs", [])],
        "outputs": [(c["name"], c["type"]) for c in signature.get("outputs", [])],
        "requirements": sorted(described.get("requirements", {}).items()),
        "metadata": sorted((k, json.dumps(v)) for k, v in described.get("metadata", {}).items()),
    }


def _json(workspace: Workspace, artifact: ArtifactRecord) -> View:
    entry = next((f for f in artifact.files if f.path.endswith(".json")), None)
    if entry is None:
        return {"kind": "none", "why": "this JSON artifact has no .json file"}
    data = json.loads(workspace.artifacts.get_bytes(entry.digest))
    return {"kind": "json", "title": "value", "data": _pretty(data)}


_VIEWERS: dict[str, Callable[[Workspace, ArtifactRecord], View]] = {
    "Dataset": _table,
    "Statistics": _statistics,
    "Anomalies": _anomalies,
    "DriftReport": _drift,
    "Evaluation": _evaluation,
    "Model": _model,
    "JSON": _json,
}
