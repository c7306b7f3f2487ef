"""Write the CI sample of the flights table: what ``ctloop ci`` trains and tests on in
seconds, where the full table would take minutes.

    python ci_sample.py                     # data/flights.parquet -> data/ci-sample.parquet
    python ci_sample.py --rows-per-month 500 --months 3

A seeded random sample of ``--rows-per-month`` flights from each of the first
``--months`` months (the pipeline's CI parameters train on the first two and test on
the third), and ``data/ci-reference.parquet``, every flight of those months, the
training data the sample's drift is measured against. Both are written atomically and
are the same bytes for the same table and arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def sample(table: pd.DataFrame, rows_per_month: int, months: int, seed: int) -> pd.DataFrame:
    """``rows_per_month`` flights of each month ``1..months`` (all of a smaller month)."""
    month = pd.to_datetime(table["date"]).dt.month
    kept = table[month <= months]
    by_month = kept.groupby(month[month <= months], group_keys=False)
    picked = by_month.apply(lambda g: g.sample(min(len(g), rows_per_month), random_state=seed))
    return picked.sort_values("date", kind="stable").reset_index(drop=True)


def write(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        table.to_parquet(temporary, index=False)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=HERE / "data" / "flights.parquet")
    parser.add_argument("--out", type=Path, default=HERE / "data")
    parser.add_argument("--rows-per-month", type=int, default=1000)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.table.is_file():
        print(
            f"error: {args.table} does not exist; build it with `python prepare_data.py`",
            file=sys.stderr,
        )
        return 1
    table = pd.read_parquet(args.table)
    month = pd.to_datetime(table["date"]).dt.month
    reference = table[month <= args.months].reset_index(drop=True)
    ci = sample(table, args.rows_per_month, args.months, args.seed)
    write(ci, args.out / "ci-sample.parquet")
    write(reference, args.out / "ci-reference.parquet")
    print(
        f"wrote {len(ci)} rows to {args.out / 'ci-sample.parquet'} and {len(reference)} to "
        f"{args.out / 'ci-reference.parquet'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
