"""The sample data a new project starts with: a generated table with a known answer,
so its pipeline trains, its tests pass and its gate has something to measure.

``data/train.csv`` is what the pipeline trains on; ``data/ci.csv`` is the smaller sample
that ``ctloop ci`` trains on in CI. Both are drawn from the same distribution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["churn_table", "house_table", "write_data"]


def churn_table(rows: int, seed: int) -> pd.DataFrame:
    """Customers of a subscription service and whether each one left (``churned``)."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.3, 0.2])
    tenure = rng.integers(1, 73, rows)
    base = np.select([plan == "basic", plan == "standard"], [30.0, 60.0], 95.0)
    charges = np.round(base + rng.normal(0, 8, rows), 2)
    calls = rng.poisson(1.5, rows)
    logit = -0.8 + 0.7 * calls - 0.05 * tenure + 0.5 * (plan == "basic")
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, rows + 1) + seed * 1_000_000,
            "plan": plan,
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "churned": churned.astype("int64"),
        }
    )


def house_table(rows: int, seed: int) -> pd.DataFrame:
    """Houses sold, with their sale ``price`` (thousands)."""
    rng = np.random.default_rng(seed)
    neighborhood = rng.choice(["center", "river", "hills", "suburb"], rows)
    area = np.round(rng.uniform(35, 250, rows), 1)
    rooms = np.clip(np.round(area / 30 + rng.normal(0, 0.7, rows)), 1, 10).astype("int64")
    age = rng.integers(0, 100, rows)
    premium = np.select(
        [neighborhood == "center", neighborhood == "river", neighborhood == "hills"],
        [1.5, 1.3, 1.1],
        1.0,
    )
    price = np.round(
        premium * (40 + 2.2 * area + 8 * rooms - 0.6 * age) + rng.normal(0, 25, rows), 1
    )
    return pd.DataFrame(
        {
            "house_id": np.arange(1, rows + 1) + seed * 1_000_000,
            "neighborhood": neighborhood,
            "area_m2": area,
            "rooms": rooms,
            "age_years": age,
            "price": price,
        }
    )


def write_data(template: str, destination: Path) -> list[Path]:
    """Write ``data/train.csv`` (2,000 rows) and ``data/ci.csv`` (600 rows)."""
    make = churn_table if template == "tabular" else house_table
    folder = Path(destination) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    make(2000, seed=1).to_csv(folder / "train.csv", index=False)
    make(600, seed=2).to_csv(folder / "ci.csv", index=False)
    return [Path("data/train.csv"), Path("data/ci.csv")]
