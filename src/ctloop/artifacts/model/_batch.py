"""Batch prediction: apply a model to a Parquet or CSV file of any size, chunk by chunk.

Rows stream from the input (``ParquetFile.iter_batches`` for a Parquet file or each
file of a Parquet folder, found with ``pyarrow.dataset``,
``pyarrow.csv.open_csv`` for CSV) in chunks of at most ``chunk_rows``, so memory stays
bounded whatever the file's size. Each chunk is converted to the model's signature,
scored with :meth:`Model.predict_frame` (ONNX Runtime when the model is compiled) and
appended to the output with its id column, the ``keep`` columns, ``prediction`` and
``model_version``. A model with a :class:`~ctloop.artifacts.model.Transform` reads every
column of the input as records, applies its ``preprocess`` and ``postprocess`` as a server
does, and writes the transform's outputs in place of ``prediction``. The output appears
only when every row is scored: it is written to a temporary file next to it and renamed,
so a bad row leaves no half-written file.

>>> result = predict_file(model, "flights.parquet", "preds.parquet",
...                       id_column="flight_id", model_version="flights@3")  # doctest: +SKIP
>>> result.rows, round(result.rows_per_s)  # doctest: +SKIP
(327346, 1450000)
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.artifacts.model._batch_frames import Where, to_model_frame
from ctloop.errors import BatchPredictionError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from ctloop.artifacts.model import Model

__all__ = ["BatchResult", "BatchSource", "open_batch_source", "predict_file", "score_batch"]

PREDICTION = "prediction"
MODEL_VERSION = "model_version"
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")


@dataclass(frozen=True)
class BatchResult:
    """What a batch prediction wrote: the output file, rows and chunks, the runtime used
    (``onnx`` or ``native``), how many chunks fell back from ONNX, and seconds taken."""

    output: Path
    rows: int
    chunks: int
    seconds: float
    runtime: str
    fallbacks: int = 0
    model_version: str | None = None

    @property
    def rows_per_s(self) -> float:
        """Throughput of the whole run."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "output": str(self.output),
            "rows": self.rows,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 4),
            "rows_per_s": round(self.rows_per_s, 1),
            "runtime": self.runtime,
            "fallbacks": self.fallbacks,
            "model_version": self.model_version,
        }


class BatchSource:
    """The chunks of a Parquet file or folder, or of a CSV file, restricted to
    ``columns``; ``total_rows`` is known for Parquet (from its footer), not for CSV."""

    def __init__(
        self,
        path: Path | str,
        columns: Sequence[str],
        *,
        chunk_rows: int = 100_000,
        column_types: dict[str, Any] | None = None,
        every_column: bool = False,
    ) -> None:
        if chunk_rows < 1:
            raise BatchPredictionError(f"chunk_rows must be at least 1, not {chunk_rows}")
        self.path = Path(path)
        if not self.path.exists():
            raise BatchPredictionError(
                f"input {self.path} does not exist; pass a Parquet or CSV file"
            )
        self.columns = list(dict.fromkeys(columns))
        self.chunk_rows = chunk_rows
        self.is_csv = self.path.is_file() and self.path.name.lower().endswith(_CSV_SUFFIXES)
        self._column_types = column_types or {}
        self.names, self.total_rows = self._inspect()
        if every_column:  # ``columns`` first, then the rest in file order
            self.columns = list(dict.fromkeys([*self.columns, *self.names]))
        missing = [c for c in self.columns if c not in self.names]
        if missing:
            raise BatchPredictionError(
                f"input {self.path} has no column {', '.join(repr(m) for m in missing)}, "
                f"which batch prediction reads; its columns are {', '.join(self.names)}"
            )

    def _inspect(self) -> tuple[list[str], int | None]:
        try:
            if self.is_csv:
                return list(self._csv_reader().schema.names), None
            dataset = self._dataset()
            total = sum(self._parquet(f).metadata.num_rows for f in dataset.files)
            return list(dataset.schema.names), int(total)
        except BatchPredictionError:
            raise
        except Exception as exc:
            if self.is_csv:
                raise _csv_error(self.path, str(exc), self._column_types) from exc
            kind = "CSV" if self.is_csv else "Parquet"
            raise BatchPredictionError(
                f"input {self.path} could not be read as {kind}: {exc}; pass a Parquet "
                "file or folder, or a .csv file"
            ) from exc

    def _dataset(self) -> Any:
        import pyarrow.dataset as ds

        return ds.dataset(self.path, format="parquet")

    @staticmethod
    def _parquet(path: str) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetFile(path)

    def _csv_reader(self) -> Any:
        from pyarrow import csv

        types = {k: v for k, v in self._column_types.items() if k in self.columns}
        return csv.open_csv(
            self.path,
            read_options=csv.ReadOptions(block_size=_csv_block_size(self.chunk_rows)),
            convert_options=csv.ConvertOptions(column_types=types),
        )

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The chunks, in file order, with only ``columns``."""
        if not self.is_csv:
            # one row group read at a time: a dataset scanner reads ahead without bound
            # when decoding outpaces scoring
            for path in sorted(self._dataset().files):
                parquet = self._parquet(path)
                batches = parquet.iter_batches(batch_size=self.chunk_rows, columns=self.columns)
                yield from _parquet_batches(batches, path)
            return
        for batch in _csv_batches(self._csv_reader(), self.path, self._column_types):
            for start in range(0, batch.num_rows, self.chunk_rows):
                yield batch.slice(start, self.chunk_rows).select(self.columns)


def _parquet_batches(batches: Iterator[pa.RecordBatch], path: str) -> Iterator[pa.RecordBatch]:
    """``batches`` of the Parquet file ``path``; pages that do not decode (the footer
    read, so the file is damaged, not of another format) raise one error naming it."""
    import pyarrow as pa

    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            raise BatchPredictionError(
                f"Parquet file {path} is damaged and cannot be read ({reason}); write it "
                "again or restore it from its source"
            ) from exc
        yield batch


def _csv_batches(reader: Any, path: Path, types: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise _csv_error(path, str(exc), types, reader.schema.names) from exc
        yield batch


def _csv_error(
    path: Path, message: str, types: dict[str, Any], names: list[str] | None = None
) -> BatchPredictionError:
    """Name the column (Arrow gives its number) and the first row (Arrow does not)."""
    import re

    from pyarrow import csv

    names = names or list(
        csv.open_csv(
            path, convert_options=csv.ConvertOptions(column_types={}, strings_can_be_null=True)
        ).schema.names
    )
    found = re.search(r"column #(\d+)", message)
    if not found or int(found.group(1)) >= len(names):
        return BatchPredictionError(f"{path} could not be read as CSV: {message}")
    column = names[int(found.group(1))]
    row, value = _first_bad_csv_value(path, column, types.get(column))
    where = f"row {row} has {value!r}" if row is not None else message
    return BatchPredictionError(
        f"column {column!r} of {path} expects {types.get(column, 'typed')} values but "
        f"{where}; fix the value or the column's type"
    )


def _first_bad_csv_value(path: Path, column: str, kind: Any) -> tuple[int | None, Any]:
    import pyarrow.compute as pc
    from pyarrow import csv

    if kind is None:
        return None, None
    options = csv.ConvertOptions(include_columns=[column], column_types={column: "string"})
    offset = 0
    for batch in csv.open_csv(path, convert_options=options):
        values = batch.column(0)
        for position, value in enumerate(values.to_pylist()):
            if value is None or value == "":
                continue
            try:
                pc.cast(_one(value), kind)
            except Exception:
                return offset + position, value
        offset += batch.num_rows
    return None, None


def _one(value: str) -> Any:
    import pyarrow as pa

    return pa.array([value])


def _csv_block_size(chunk_rows: int) -> int:
    """About 64 bytes a row, at least 1 MiB, at most 64 MiB per CSV block."""
    return max(1 << 20, min(64 << 20, chunk_rows * 64))


def predict_file(
    model: Model,
    input: Path | str,
    output: Path | str,
    *,
    id_column: str | None = None,
    keep: Sequence[str] = (),
    chunk_rows: int = 100_000,
    model_version: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> BatchResult:
    """Score every row of ``input`` (Parquet file or folder, or CSV) with ``model`` and
    write ``output`` (Parquet, or CSV when it ends in ``.csv``): the ``id_column`` and
    ``keep`` columns as they were, then ``prediction`` and ``model_version``.

    ``progress`` is called with the number of rows of each chunk done. A missing column
    or a value of the wrong type raises :class:`~ctloop.errors.BatchPredictionError`
    naming the column, chunk and row, and leaves no output file.

    >>> predict_file(model, "in.parquet", "out.parquet", id_column="id").rows  # doctest: +SKIP
    1000
    """
    passthrough = [c for c in dict.fromkeys([*([id_column] if id_column else []), *keep])]
    _check_passthrough(passthrough, model)
    source = open_batch_source(model, input, passthrough, chunk_rows=chunk_rows)
    started = time.perf_counter()
    fallbacks_before = model.compiled_fallbacks
    with _AtomicWriter(Path(output)) as writer:
        rows = chunks = 0
        for batch in source.batches():
            table = score_batch(model, batch, passthrough, model_version, chunks, rows, source.path)
            writer.write(table)
            rows += batch.num_rows
            chunks += 1
            if progress is not None:
                progress(batch.num_rows)
    return BatchResult(
        output=Path(output),
        rows=rows,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        runtime=model.runtime,
        fallbacks=model.compiled_fallbacks - fallbacks_before,
        model_version=model_version,
    )


def open_batch_source(
    model: Model, input: Path | str, passthrough: Sequence[str], *, chunk_rows: int = 100_000
) -> BatchSource:
    """The chunks of ``input`` with the model's columns and ``passthrough`` columns (CSV
    columns are read with the types the model's signature declares); every column for
    a model with a transform, which reads whatever fields it needs."""
    if model.transform is not None:
        return BatchSource(input, passthrough, chunk_rows=chunk_rows, every_column=True)
    columns = [*model.signature.input_names, *passthrough]
    return BatchSource(input, columns, chunk_rows=chunk_rows, column_types=_csv_types(model))


def score_batch(
    model: Model,
    batch: pa.RecordBatch,
    passthrough: Sequence[str],
    model_version: str | None,
    chunk: int = 0,
    first_row: int = 0,
    source: Path | str = "input",
) -> pa.Table:
    """One chunk's output table: ``passthrough`` columns, ``prediction`` (or the
    transform's outputs), ``model_version``."""
    import pyarrow as pa

    where = Where(str(source), chunk, first_row)
    if model.transform is not None:
        outputs = _transformed(model, batch, where)
    else:
        frame = to_model_frame(model, batch, where)
        outputs = {PREDICTION: _predicted(model, frame, where, batch.num_rows)}
    clash = [name for name in outputs if name in passthrough or name == MODEL_VERSION]
    if clash:
        raise BatchPredictionError(
            f"the transform's output {clash[0]!r} has the name of a column the output "
            "already writes; keep another column, or rename the output"
        )
    arrays = [batch.column(name) for name in passthrough]
    arrays += [_prediction_array(values) for values in outputs.values()]
    names = [*passthrough, *outputs]
    if model_version is not None:
        arrays.append(_constant(model_version, batch.num_rows))
        names.append(MODEL_VERSION)
    return pa.Table.from_arrays(arrays, names=names)


def _predicted(model: Model, frame: Any, where: Where, rows: int) -> np.ndarray:
    try:
        return model.predict_frame(frame)
    except Exception as exc:
        raise BatchPredictionError(f"the model failed on {where.rows(rows)}: {exc!r}") from exc


def _transformed(model: Model, batch: pa.RecordBatch, where: Where) -> dict[str, np.ndarray]:
    """The transform's outputs for the chunk's rows, read as records."""
    from ctloop.errors import ModelError

    records = batch.to_pylist()
    try:
        frame = model.prepare_request(records)
    except ModelError as exc:  # the input's fault or the transform's, named either way
        raise BatchPredictionError(f"{where.rows(batch.num_rows)}: {exc}") from exc
    predictions = _predicted(model, frame, where, batch.num_rows)
    try:
        outputs = model.answer(predictions, records)
    except ModelError as exc:
        raise BatchPredictionError(f"{where.rows(batch.num_rows)}: {exc}") from exc
    assert outputs is not None  # a model with a transform answers
    return outputs


def _prediction_array(predictions: np.ndarray) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    values = np.asarray(predictions)
    if values.ndim == 2:
        flat = pa.array(values.reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    return pa.array(values)


def _constant(value: str, rows: int) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    indices = pa.array(np.zeros(rows, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value]))


def _check_passthrough(passthrough: Sequence[str], model: Model) -> None:
    clash = [c for c in passthrough if c in (PREDICTION, MODEL_VERSION)]
    if clash:
        raise BatchPredictionError(
            f"column {clash[0]!r} cannot be kept: the output writes its own {clash[0]!r}; "
            "rename it in the input"
        )


def _csv_types(model: Model) -> dict[str, Any]:
    import pyarrow as pa

    types = {
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "string": pa.string(),
        "category": pa.string(),
    }
    return {s.name: types[s.type] for s in model.signature.inputs if s.type in types}


class _AtomicWriter:
    """Parquet (or CSV) written to a temporary file beside ``path`` and renamed into
    place on success; removed on any error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = path.name.lower().endswith(".csv")
        self.temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._writer: Any = None

    def __enter__(self) -> _AtomicWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._writer = self._open(table.schema)
        self._writer.write_table(table) if not self.csv else self._writer.write(table)

    def _open(self, schema: pa.Schema) -> Any:
        if self.csv:
            from pyarrow import csv

            return csv.CSVWriter(str(self.temporary), schema)
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(self.temporary), schema)

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        try:
            if self._writer is None and kind is None:
                self._write_empty()
            if self._writer is not None:
                self._writer.close()
            if kind is None:
                os.replace(self.temporary, self.path)
        finally:
            self.temporary.unlink(missing_ok=True)

    def _write_empty(self) -> None:
        import pyarrow as pa

        self.write(pa.table({PREDICTION: pa.array([], type=pa.float64())}))
