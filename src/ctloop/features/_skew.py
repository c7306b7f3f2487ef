"""Training-serving skew: the offline (historical) value of each feature against the
online value, for a sample of keys.

For each feature view of a service, keys are sampled from its source; the offline value
is the point-in-time join at the view's watermark (the end of its last materialization,
the time the online value is as of), the online value what an online read returns now.
A pair differs when one is missing and the other is not, or the values differ (floats
beyond a relative 1e-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from ctloop.errors import FeatureError
from ctloop.features._definitions import FeatureView
from ctloop.features._historical import get_historical_features
from ctloop.features._online import online_features
from ctloop.features._sources import source_relation
from ctloop.features._stored import Selection, Workspace, select_features

__all__ = ["FeatureSkew", "SkewReport", "feature_skew"]


@dataclass(frozen=True)
class FeatureSkew:
    """One feature's comparison: ``compared`` keys, ``mismatches`` among them."""

    view: str
    feature: str
    compared: int
    mismatches: int

    @property
    def share(self) -> float:
        """The share of compared keys whose values differ."""
        return self.mismatches / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class SkewReport:
    """The skew of every feature of a service; ``passed`` when no value differs."""

    service: str
    features: tuple[FeatureSkew, ...]

    @property
    def passed(self) -> bool:
        """True when every compared offline value equals its online value."""
        return all(f.mismatches == 0 for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "service": self.service, "passed": self.passed,
            "features": [{"view": f.view, "feature": f.feature, "compared": f.compared,
                          "mismatches": f.mismatches, "share": round(f.share, 6)}
                         for f in self.features],
        }  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9)
    if hasattr(a, "tzinfo") and hasattr(b, "tzinfo"):
        return bool(a.replace(tzinfo=UTC) == b.replace(tzinfo=UTC))
    return bool(a == b)


def _sample_keys(view: FeatureView, sample: int, seed: int) -> list[dict[str, Any]]:
    import duckdb

    keys = ", ".join('"' + k.replace('"', '""') + '"' for k in view.join_keys)
    with duckdb.connect() as con:
        con.execute(f"SELECT setseed({(seed % 1000) / 1000})")
        query = f"SELECT DISTINCT {keys} FROM {source_relation(view.source)}"
        rows = con.execute(f"SELECT * FROM ({query}) ORDER BY random() LIMIT {int(sample)}")
        return [dict(zip(view.join_keys, r, strict=True)) for r in rows.fetchall()]


def _view_skew(
    workspace: Workspace, view: FeatureView, wanted: list[str], sample: int, seed: int
) -> list[FeatureSkew]:
    import pyarrow as pa

    watermark = workspace.features.watermark(view.name)
    if watermark is None:
        raise FeatureError(
            f"feature view {view.name!r} was never materialized, so it has no online values "
            "to compare; run `ctloop features materialize` first"
        )
    rows = _sample_keys(view, sample, seed)
    at = watermark.astimezone(UTC).replace(tzinfo=None)
    entities = pa.table(
        {**{k: [r[k] for r in rows] for k in view.join_keys}, "event_timestamp": [at] * len(rows)}
    )
    offline = get_historical_features(entities, [view]).to_pydict()
    selection = Selection((view,), (), tuple((view.name, f) for f in wanted))
    online = online_features(workspace, selection, rows)
    return [
        FeatureSkew(view.name, f, len(rows),
                    sum(not _same(a, b) for a, b in zip(offline[f], online[f], strict=True)))
        for f in wanted
    ]  # fmt: skip


def feature_skew(
    workspace: Workspace, service: str, *, sample: int = 100, seed: int = 0
) -> SkewReport:
    """Compare the offline and online values of every feature of the applied feature
    service ``service`` for up to ``sample`` keys of each view (on-demand features are
    computed from these, so they are not compared themselves).

    >>> report = feature_skew(workspace, "flights_v1", sample=50)  # doctest: +SKIP
    >>> [(f.feature, f.share) for f in report.features]  # doctest: +SKIP
    [('temp', 0.0), ('visib', 0.0)]
    """
    if sample < 1:
        raise FeatureError(f"sample is {sample}; give a number of keys of at least 1")
    selection = select_features(workspace, service)
    wanted: dict[str, list[str]] = {}
    for view_name, feature in selection.wanted:
        wanted.setdefault(view_name, []).append(feature)
    found: list[FeatureSkew] = []
    for view in selection.lookups:
        names = wanted.get(view.name) or list(view.feature_names)
        found += _view_skew(workspace, view, names, sample, seed)
    return SkewReport(service, tuple(found))
