"""Turning what users hand us (Arrow, pandas, polars, batch iterators) into Arrow tables.

Everything is read chunk by chunk, so statistics of a data set bigger than memory need only
one chunk at a time. A pandas index is not data: the columns that Arrow tables read from
pandas-written Parquet name as the index (``__index_level_0__`` for a filtered frame) are
left out, as ``DataFrame`` input leaves out its index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from ctloop.errors import StatisticsError

DEFAULT_CHUNK_ROWS = 1_000_000


def iter_tables(data: Any, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pa.Table]:
    """Yield ``data`` as Arrow tables of at most ``chunk_rows`` rows each.

    Accepts a ``pyarrow.Table``, ``RecordBatch`` or ``RecordBatchReader``, a pandas or
    polars ``DataFrame``, or an iterable of any of those.

    >>> import pandas as pd
    >>> [t.num_rows for t in iter_tables(pd.DataFrame({"x": range(5)}), chunk_rows=2)]
    [2, 2, 1]
    """
    if isinstance(data, pa.Table):
        yield from _slices(_without_index(data), chunk_rows)
    elif isinstance(data, pa.RecordBatch):
        yield from _slices(_without_index(pa.Table.from_batches([data])), chunk_rows)
    elif isinstance(data, pa.RecordBatchReader):
        index = pandas_index_columns(data.schema)
        for batch in data:
            yield from _slices(pa.Table.from_batches([batch]).drop_columns(index), chunk_rows)
    elif _is_frame(data):
        yield from _slices(to_arrow(data), chunk_rows)
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, dict)):
        for part in data:
            yield from iter_tables(part, chunk_rows=chunk_rows)
    else:
        raise StatisticsError(
            f"cannot read data of type {type(data).__name__}; pass a pyarrow Table, "
            "RecordBatch or RecordBatchReader, a pandas or polars DataFrame, or an iterable "
            "of those"
        )


def to_arrow(frame: Any) -> pa.Table:
    """A pandas or polars ``DataFrame`` as an Arrow table (pandas NaN becomes missing).

    >>> import pandas as pd
    >>> to_arrow(pd.DataFrame({"x": [1.0, None]})).column("x").null_count
    1
    """
    if hasattr(frame, "to_arrow"):  # polars
        return frame.to_arrow()
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StatisticsError(
            f"the DataFrame cannot be converted to Arrow ({exc}); give each column a single "
            "type, e.g. with `df[col].astype(str)`"
        ) from exc


def pandas_index_columns(schema: pa.Schema) -> list[str]:
    """The columns of ``schema`` that hold a pandas index, by its pandas metadata (which
    ``DataFrame.to_parquet`` writes; a plain range index is stored as metadata only).

    >>> import pandas as pd
    >>> table = pa.Table.from_pandas(pd.DataFrame({"x": [1, 2]}, index=[7, 9]))
    >>> table.column_names, pandas_index_columns(table.schema)
    (['x', '__index_level_0__'], ['__index_level_0__'])
    """
    try:
        metadata = schema.pandas_metadata
    except ValueError:  # metadata that is not JSON: not written by pandas
        return []
    entries = (metadata or {}).get("index_columns") if isinstance(metadata, dict) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, str) and e in schema.names]


def _without_index(table: pa.Table) -> pa.Table:
    index = pandas_index_columns(table.schema)
    return table.drop_columns(index) if index else table


def _is_frame(data: Any) -> bool:
    """True for a pandas or polars DataFrame."""
    module = type(data).__module__.split(".")[0]
    return module in ("pandas", "polars") and hasattr(data, "columns")


def _slices(table: pa.Table, chunk_rows: int) -> Iterator[pa.Table]:
    """Zero-copy slices of ``table``; an empty table yields itself once (so columns are seen)."""
    if table.num_rows == 0:
        yield table
        return
    for start in range(0, table.num_rows, chunk_rows):
        yield table.slice(start, chunk_rows)
