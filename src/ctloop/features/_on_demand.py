"""Running on-demand feature views: their transform sees the entity frame's request
fields and their input views' features as a pandas DataFrame, one row per entity row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctloop.errors import FeatureError
from ctloop.features._sources import SQL_TYPES

if TYPE_CHECKING:
    import pyarrow as pa

    from ctloop.features._definitions import Field, OnDemandFeatureView

__all__ = ["run_on_demand"]

_ARROW = {"int64": "int64", "int32": "int32", "float64": "float64", "float32": "float32",
          "string": "string", "bool": "bool", "timestamp": "timestamp[us]"}  # fmt: skip
assert set(_ARROW) == set(SQL_TYPES)


def run_on_demand(
    view: OnDemandFeatureView, entities: pa.Table, joined: dict[str, pa.Table]
) -> pa.Table:
    """The outputs of ``view``'s transform, cast to their declared types.

    Raises a :class:`~ctloop.errors.FeatureError` naming the view when a request field is
    missing from ``entities``, the transform raises, or it returns the wrong columns or rows.
    """
    import pyarrow as pa

    frame = _inputs(view, entities, joined).to_pandas()
    try:
        out = view.transform(frame)
    except Exception as exc:
        raise FeatureError(
            f"on-demand feature view {view.name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    columns = list(getattr(out, "columns", []))
    missing = [f.name for f in view.outputs if f.name not in columns]
    if missing or len(out) != entities.num_rows:
        raise FeatureError(
            f"on-demand feature view {view.name!r} must return a DataFrame with columns "
            f"{', '.join(f.name for f in view.outputs)} and {entities.num_rows} rows; it returned "
            f"columns {columns} and {len(out)} rows"
        )
    arrays = [
        pa.array(out[f.name], type=pa.type_for_alias(_ARROW[f.dtype]), from_pandas=True)
        for f in view.outputs
    ]
    return pa.table(arrays, names=list(view.feature_names))


def _inputs(view: OnDemandFeatureView, entities: pa.Table, joined: dict[str, pa.Table]) -> pa.Table:
    table = entities
    for field in view.request:
        if field.name not in entities.column_names:
            raise FeatureError(
                f"on-demand feature view {view.name!r} needs request field {field.name!r}, "
                "which the entity frame lacks; add the column"
            )
        index = table.column_names.index(field.name)
        table = table.set_column(index, field.name, _request_column(view, field, table[index]))
    for source in view.inputs:
        for name in source.feature_names:
            if name not in table.column_names:
                table = table.append_column(name, joined[source.name].column(name))
    return table


def _request_column(view: OnDemandFeatureView, field: Field, column: pa.ChunkedArray) -> Any:
    """``column`` as the request field's declared type (text such as ``"700"`` is
    parsed); a value that cannot be is named."""
    import pyarrow as pa

    kind = pa.type_for_alias(_ARROW[field.dtype])
    if column.type == kind:
        return column
    try:
        return column.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FeatureError(
            f"request field {field.name!r} of on-demand feature view {view.name!r} is "
            f"{column.type} in the entity frame and cannot be read as {field.dtype} ({exc}); "
            "fix the column or the field's declared type"
        ) from exc
