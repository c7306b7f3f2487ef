"""Skew and drift between two data sets, from their statistics alone.

Training vs serving data is *skew*, yesterday vs today is *drift*; the computation is the
same. Each column shared by both sides gets one test (see ``ctloop.data._statistical_tests``),
chosen by type and reference size unless ``DriftConfig.tests`` names one:

============  ======================  ==========================================
column type   reference values ≤ 1000  more
============  ======================  ==========================================
numeric       ``ks``: p-value < 0.05   ``wasserstein`` (normed) > 0.1
categorical   ``chisquare``: p < 0.05  ``jensenshannon`` > 0.1
============  ======================  ==========================================

``psi`` (> 0.1) and ``linf`` (> 0.1, categorical) are there to choose. The data set has
drifted when the share of drifted columns is at least ``DriftConfig.drift_share`` (0.5).

>>> import pandas as pd
>>> before = pd.DataFrame({"x": range(2000)})
>>> report = detect_drift(before, before.assign(x=before.x + 1000))
>>> report.drifted, report["x"].test
(True, 'wasserstein')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ctloop.data import _statistical_tests as st
from ctloop.data._statistics import (
    CATEGORICAL_TYPES,
    NUMERIC_TYPES,
    ColumnStatistics,
    DatasetStatistics,
    compute_statistics,
)
from ctloop.errors import DataValidationError

FORMAT_VERSION = 1

# name → (column kind, function, whether the threshold bounds a p-value, default threshold)
_TESTS: dict[str, tuple[str, Callable[[Any, Any], st.TestResult], bool, float]] = {
    "ks": ("numeric", st.ks, True, 0.05),
    "wasserstein": ("numeric", st.wasserstein, False, 0.1),
    "psi": ("numeric", st.numeric_psi, False, 0.1),
    "chisquare": ("categorical", st.chisquare, True, 0.05),
    "jensenshannon": ("categorical", st.jensenshannon, False, 0.1),
    "linf": ("categorical", st.linf, False, 0.1),
}
TEST_NAMES = ("ks", "wasserstein", "psi", "chisquare", "jensenshannon", "linf")


@dataclass(frozen=True)
class ColumnTest:
    """The test (and threshold) to use for one column; ``threshold=None`` keeps the default.

    >>> ColumnTest("psi", 0.2).threshold
    0.2
    """

    test: str
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.test not in _TESTS:
            raise DataValidationError(
                f"unknown drift test {self.test!r}; choose one of {', '.join(TEST_NAMES)}"
            )


@dataclass(frozen=True)
class DriftConfig:
    """How to test drift: per-column tests, the sample-size cut-off, the data-set verdict.

    >>> DriftConfig(tests={"fare": ColumnTest("psi", 0.2)}, drift_share=0.3).drift_share
    0.3
    """

    tests: Mapping[str, ColumnTest] = field(default_factory=dict)
    drift_share: float = 0.5
    small_sample: int = 1000
    columns: tuple[str, ...] | None = None  # None: every column both sides share
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test result; ``drifted`` compares the p-value or distance to the threshold.

    >>> ColumnDrift("x", "float", "psi", 0.3, None, 0.1, True).score
    0.3
    """

    column: str
    type: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    reference_count: int = 0
    current_count: int = 0

    @property
    def score(self) -> float:
        """The number compared with the threshold: the p-value, or else the statistic."""
        return self.p_value if self.p_value is not None else self.statistic

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnDrift:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


@dataclass(frozen=True)
class DriftReport:
    """Per-column results and the data-set verdict.

    ``skipped`` lists columns not tested, each with the reason.

    >>> DriftReport((), 0.5).drifted
    False
    """

    __ctloop_artifact__ = "DriftReport"  # artifact type, see ctloop.artifacts.records

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the drifted columns."""
        return tuple(c.column for c in self.columns if c.drifted)

    @property
    def drifted_share(self) -> float:
        """Share of tested columns that drifted (0 when none was tested)."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def drifted(self) -> bool:
        """True when at least ``drift_share`` of the tested columns drifted."""
        return bool(self.columns) and self.drifted_share >= self.drift_share

    def __getitem__(self, column: str) -> ColumnDrift:
        for result in self.columns:
            if result.column == column:
                return result
        raise KeyError(
            f"column {column!r} was not tested; tested: {[c.column for c in self.columns]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {
            "version": FORMAT_VERSION,
            "drifted": self.drifted,
            "drifted_share": self.drifted_share,
            "drift_share": self.drift_share,
            "columns": [c.to_dict() for c in self.columns],
            "skipped": [list(s) for s in self.skipped],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """Read what ``to_dict`` wrote."""
        columns = tuple(ColumnDrift.from_dict(c) for c in data["columns"])
        skipped = tuple((str(s[0]), str(s[1])) for s in data.get("skipped", ()))
        return cls(columns, float(data["drift_share"]), skipped)


def detect_drift(reference: Any, current: Any, *, config: DriftConfig | None = None) -> DriftReport:
    """Test every shared column of ``current`` against ``reference``.

    Either side is a ``DatasetStatistics`` (e.g. the training statistics stored with a model)
    or data that ``compute_statistics`` reads.

    >>> import pandas as pd
    >>> data = pd.DataFrame({"c": ["a", "b"] * 50})
    >>> detect_drift(data, data).drifted
    False
    """
    config = config or DriftConfig()
    ref, cur = _as_statistics(reference), _as_statistics(current)
    results, skipped = [], []
    for name in _columns_to_test(ref, cur, config):
        outcome = _test_column(ref[name], cur[name], config)
        if isinstance(outcome, str):
            skipped.append((name, outcome))
        else:
            results.append(outcome)
    skipped += [(n, "not in both data sets") for n in _one_sided(ref, cur, config)]
    return DriftReport(tuple(results), config.drift_share, tuple(skipped))


def _as_statistics(data: Any) -> DatasetStatistics:
    """``data`` if it is statistics already, else its statistics."""
    return data if isinstance(data, DatasetStatistics) else compute_statistics(data)


def _columns_to_test(
    ref: DatasetStatistics, cur: DatasetStatistics, config: DriftConfig
) -> list[str]:
    """Columns in both, in the reference's order, restricted by the config."""
    wanted = config.columns if config.columns is not None else ref.names
    return [n for n in wanted if n in ref and n in cur and n not in config.exclude]


def _one_sided(ref: DatasetStatistics, cur: DatasetStatistics, config: DriftConfig) -> list[str]:
    """Wanted columns that only one side has."""
    wanted = config.columns if config.columns is not None else (*ref.names, *cur.names)
    both = set(ref.names) & set(cur.names)
    return [n for n in dict.fromkeys(wanted) if n not in both and n not in config.exclude]


def _kind(column: ColumnStatistics) -> str | None:
    """``numeric`` or ``categorical``, or None for columns no test reads."""
    if column.type in NUMERIC_TYPES:
        return "numeric"
    return "categorical" if column.type in CATEGORICAL_TYPES else None


def _test_column(
    ref: ColumnStatistics, cur: ColumnStatistics, config: DriftConfig
) -> ColumnDrift | str:
    """Run the column's test, or say why it cannot run."""
    kind = _kind(ref)
    if kind is None or _kind(cur) != kind:
        return f"type {ref.type} in the reference and {cur.type} in the current data"
    sizes = _sizes(ref, cur)
    if min(sizes) == 0:
        return "no values on one side"
    chosen = config.tests.get(ref.name) or _default_test(kind, sizes[0], config.small_sample)
    test_kind, function, is_p_value, default = _TESTS[chosen.test]
    if test_kind != kind and chosen.test != "psi":
        raise DataValidationError(
            f"drift test {chosen.test!r} is for {test_kind} columns but column {ref.name!r} is "
            f"{ref.type}; pick another test for it in DriftConfig.tests"
        )
    summaries = (
        (ref.numeric, cur.numeric) if kind == "numeric" else (ref.categories, cur.categories)
    )
    if chosen.test == "psi" and kind == "categorical":
        function = st.categorical_psi
    result = function(*summaries)
    threshold = default if chosen.threshold is None else chosen.threshold
    score = result.p_value if is_p_value and result.p_value is not None else result.statistic
    drifted = score < threshold if is_p_value else score > threshold
    return ColumnDrift(
        ref.name,
        ref.type,
        chosen.test,
        result.statistic,
        result.p_value,
        threshold,
        drifted,
        *sizes,
    )


def _sizes(ref: ColumnStatistics, cur: ColumnStatistics) -> tuple[int, int]:
    """Values each side's test reads (finite numbers, or non-missing categories)."""
    if ref.numeric is not None and cur.numeric is not None:
        return ref.numeric.count, cur.numeric.count
    return ref.present, cur.present


def _default_test(kind: str, reference_size: int, small_sample: int) -> ColumnTest:
    """Hypothesis tests for small references, distances for large ones (as Evidently)."""
    small = reference_size <= small_sample
    if kind == "numeric":
        return ColumnTest("ks" if small else "wasserstein")
    return ColumnTest("chisquare" if small else "jensenshannon")
