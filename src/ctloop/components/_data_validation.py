"""Data validation steps: ``statistics``, ``infer_schema``, ``validate``, ``detect_drift``.

Each step binds a function of :mod:`ctloop.data` to the pipeline DSL; its result is stored
as a typed artifact (``Statistics``, ``Schema``, ``Anomalies``, ``DriftReport``). ``validate``
fails its step when the data breaks the schema, so the steps after it do not run.

>>> from ctloop import pipeline
>>> @pipeline
... def check(path: str = "flights.parquet"):
...     data = load(path)  # doctest: +SKIP
...     schema = infer_schema(statistics(data))  # doctest: +SKIP
...     validate(data, schema)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ctloop.data import (
    Anomalies,
    ColumnTest,
    DatasetStatistics,
    DriftConfig,
    DriftReport,
    Schema,
    compute_statistics,
)
from ctloop.data import detect_drift as detect_drift_between
from ctloop.data import infer_schema as infer_schema_from
from ctloop.data import validate as validate_against
from ctloop.errors import AnomaliesFoundError, ParameterError
from ctloop.pipeline import FilePath, step
from ctloop.pipeline.tracking import track_metric, track_tag

__all__ = ["describe_anomalies", "detect_drift", "infer_schema", "statistics", "validate"]


@step
def statistics(data: Any) -> DatasetStatistics:
    """Statistics of a table (pandas, polars or Arrow), stored as a ``Statistics`` artifact.

    >>> statistics(pd.DataFrame({"x": [1, 2]})).num_rows  # doctest: +SKIP
    2
    """
    return compute_statistics(data)


@step
def infer_schema(
    statistics: DatasetStatistics,
    max_domain_size: int = 100,
    infer_ranges: bool = True,
    environments: dict[str, list[str]] | None = None,
) -> Schema:
    """A schema the data behind ``statistics`` meets, stored as a readable YAML artifact.

    ``environments`` maps an environment to the columns absent from it, e.g.
    ``{"serving": ["arr_delay"]}``.

    >>> infer_schema(statistics(frame), environments={"serving": ["label"]})  # doctest: +SKIP
    """
    return infer_schema_from(
        statistics,
        max_domain_size=max_domain_size,
        infer_ranges=infer_ranges,
        environments=environments,
    )


@step
def validate(
    data: Any,
    schema: Schema | None = None,
    schema_path: FilePath | None = None,
    environment: str | None = None,
    severities: dict[str, str] | None = None,
) -> Anomalies:
    """Check ``data`` (or its statistics) against a schema; fail on error anomalies.

    The schema is an artifact (from ``infer_schema``) or a YAML file kept with the code
    (``schema_path``). Errors fail the step with one line per anomaly, so the steps that
    depend on it are skipped; warnings are printed to the step's log, tagged and counted
    (metric ``anomaly_warnings``).

    >>> validate(frame, schema_path="schema.yaml", environment="serving")  # doctest: +SKIP
    """
    chosen = _schema(schema, schema_path)
    anomalies = validate_against(data, chosen, environment=environment, severities=severities)
    _record(anomalies)
    if anomalies.errors:
        raise AnomaliesFoundError(describe_anomalies(anomalies, source=schema_path), anomalies)
    return anomalies


@step
def detect_drift(
    reference: Any,
    current: Any,
    drift_share: float = 0.5,
    tests: dict[str, str] | None = None,
    exclude: list[str] | None = None,
) -> DriftReport:
    """Drift of ``current`` against ``reference`` (tables or their statistics).

    ``tests`` chooses the test of a column by name (``ks``, ``wasserstein``, ``psi``,
    ``chisquare``, ``jensenshannon``, ``linf``; see :mod:`ctloop.data._drift`). Logs ``drifted_share``, ``drifted`` (0 or 1) and, per tested
    column, ``drift.<column>`` (the test's score) as metrics.

    >>> detect_drift(train_stats, today, tests={"distance": "psi"})  # doctest: +SKIP
    """
    per_column = {name: ColumnTest(test) for name, test in (tests or {}).items()}
    config = DriftConfig(tests=per_column, drift_share=drift_share, exclude=tuple(exclude or ()))
    report = detect_drift_between(reference, current, config=config)
    track_metric("drifted_share", report.drifted_share)
    track_metric("drifted", float(report.drifted))
    for column in report.columns:
        track_metric(f"drift.{column.column}", column.score)
    return report


def describe_anomalies(anomalies: Anomalies, *, source: object = None) -> str:
    """The error anomalies as a message with one line per anomaly.

    >>> from ctloop.data import Anomaly
    >>> print(describe_anomalies(Anomalies((Anomaly("x", "type_mismatch", "type int", "type string"),))))
    the data breaks its schema in 1 way (column 'x'):
      - column 'x': type_mismatch: expected type int, saw type string
    fix the data, or edit the schema if the change is expected
    """
    errors = anomalies.errors
    columns = list(dict.fromkeys(a.column for a in errors if a.column is not None))
    where = f"column{'s' if len(columns) > 1 else ''} {', '.join(map(repr, columns))}"
    ways = f"{len(errors)} way{'s' if len(errors) > 1 else ''}"
    schema = f" ({source})" if source is not None else ""
    lines = [f"the data breaks its schema{schema} in {ways} ({where or 'the data set'}):"]
    lines += [f"  - {a.description}" for a in errors]
    lines.append("fix the data, or edit the schema if the change is expected")
    return "\n".join(lines)


def _schema(schema: Schema | None, schema_path: FilePath | None) -> Schema:
    """The schema artifact, or the one read from ``schema_path`` (exactly one of them)."""
    if (schema is None) == (schema_path is None):
        raise ParameterError(
            "validate needs exactly one schema: pass the output of infer_schema as `schema` "
            "or a YAML file as `schema_path` (write one with `ctloop data schema FILE -o "
            "schema.yaml`)"
        )
    if schema is not None:
        return schema
    assert schema_path is not None
    return Schema.from_yaml(schema_path.read_text())


def _record(anomalies: Anomalies) -> None:
    """Count anomalies as metrics; print and tag the warnings (shown by ``ctloop runs logs``)."""
    for warning in anomalies.warnings:
        print(f"warning: {warning.description}")
    track_metric("anomaly_errors", len(anomalies.errors))
    track_metric("anomaly_warnings", len(anomalies.warnings))
    if anomalies.warnings:
        track_tag("anomaly_warnings", "; ".join(a.description for a in anomalies.warnings))
