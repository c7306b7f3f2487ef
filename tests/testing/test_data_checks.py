"""Data tests pass on good data and fail with a message naming the check, column, rows
and numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.data import compute_statistics, infer_schema
from ctloop.testing import CheckFailed, check_drift, check_no_nulls, check_ranges, check_schema


def table(rows: int = 400, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows).astype("int64"),
            "income": rng.normal(50_000 + shift * 10_000, 10_000, rows),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )


def test_a_schema_inferred_from_the_data_holds_and_a_file_of_it_too(tmp_path: Path) -> None:
    data = table()
    schema = infer_schema(compute_statistics(data))
    check_schema(data, schema)
    (tmp_path / "schema.yaml").write_text(schema.to_yaml())
    check_schema(data, tmp_path / "schema.yaml")


def test_a_broken_schema_names_the_column_and_what_was_seen() -> None:
    schema = infer_schema(compute_statistics(table()))
    bad = table().assign(plan="enterprise")
    with pytest.raises(CheckFailed) as failure:
        check_schema(bad, schema)
    message = str(failure.value)
    assert message.startswith("check schema failed: 1 anomaly: column 'plan'")
    assert "enterprise" in message


def test_nulls_are_named_by_column_count_and_rows() -> None:
    check_no_nulls(table())
    data = table(10)
    data.loc[[2, 7], "income"] = np.nan
    with pytest.raises(CheckFailed, match=r"column 'income' has 2 nulls of 10 \(rows 2, 7\)"):
        check_no_nulls(data, ["age", "income"])


def test_values_outside_a_range_name_the_extremes_and_rows() -> None:
    data = table(10)
    check_ranges(data, {"age": (0, 120), "income": (None, None)})
    data.loc[4, "age"] = 130
    data.loc[6, "age"] = -1
    with pytest.raises(CheckFailed) as failure:
        check_ranges(data, {"age": (0, 120)})
    assert str(failure.value) == (
        "check ranges failed: column 'age' has 2 of 10 values outside [0, 120] "
        "(min -1, max 130; rows 4, 6)"
    )


def test_a_missing_column_is_a_failure_that_names_it() -> None:
    with pytest.raises(CheckFailed, match="column 'tenure' is not in the data"):
        check_no_nulls(table(5), ["tenure"])


def test_drift_passes_for_a_fresh_sample_and_names_a_shifted_column() -> None:
    reference = table(2000)
    report = check_drift(reference, table(500, seed=1))
    assert not report.drifted_columns
    with pytest.raises(CheckFailed) as failure:
        check_drift(reference, table(500, shift=2.0, seed=1), max_drifted_share=0.0)
    message = str(failure.value)
    assert "1 of 3 columns drifted (share 0.33 > 0.00)" in message
    assert "'income' (" in message and "statistic" in message
    check_drift(reference, table(500, shift=2.0, seed=1), max_drifted_share=0.5)
