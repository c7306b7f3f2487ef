"""A standalone HTML report of statistics, drift and anomalies, readable at a glance.

One file with its CSS and plots inline (SVG drawn from the statistics): it opens in any
browser with no network. On top, the verdict (drift, share of drifted columns, anomaly
errors and warnings); then a summary table, the anomalies, and per column a plot of the
reference and current distributions overlaid, with key statistics. The same inputs give
the same bytes. Only ``reference`` is needed: alone, it makes a statistics report.

>>> import pandas as pd
>>> from ctloop.data import compute_statistics
>>> page = render_report(title="Trips", reference=compute_statistics(pd.DataFrame({"x": [1, 2]})))
>>> page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1
True
"""

from __future__ import annotations

from typing import Any

from ctloop.data._anomalies import Anomalies
from ctloop.data._drift import ColumnDrift, DriftReport
from ctloop.data._report_svg import (
    CURRENT_COLOUR,
    REFERENCE_COLOUR,
    Series,
    category_plot,
    empty_plot,
    format_number,
    format_time,
    numeric_plot,
)
from ctloop.data._statistics import ColumnStatistics, DatasetStatistics
from ctloop.pages import Markup, render, render_page


def render_report(
    *,
    title: str,
    reference: DatasetStatistics,
    current: DatasetStatistics | None = None,
    drift: DriftReport | None = None,
    anomalies: Anomalies | None = None,
    standalone: bool = True,
) -> str:
    """The report as one self-contained HTML page (``standalone=False``: its content only,
    as :class:`Markup` to place inside another page such as the monitoring report).

    ``reference`` is the baseline (e.g. the training data's statistics); ``current`` the
    data compared with it; ``drift`` and ``anomalies`` what ``detect_drift`` and
    ``validate`` found. Every name and value from the data is HTML-escaped.

    >>> import pandas as pd
    >>> from ctloop.data import compute_statistics, detect_drift
    >>> ref = compute_statistics(pd.DataFrame({"c": ["a", "b"] * 50}))
    >>> page = render_report(title="t", reference=ref, current=ref, drift=detect_drift(ref, ref))
    >>> "No drift" in page
    True
    """
    names = list(reference.names) + [
        n for n in (current.names if current else ()) if n not in reference
    ]
    results = {c.column: c for c in drift.columns} if drift is not None else {}
    headings = ["Column", "Type", "Test", "Statistic", "Threshold", "Drifted", "Missing %"]
    page = render(
        "ctloop.data/report.html",
        title=title,
        sizes=_sizes(reference, current),
        verdicts=_verdicts(drift, anomalies),
        tested=drift is not None,
        headings=headings if drift is not None else ["Column", "Type", "Missing %"],
        columns=[_column_view(i, n, reference, current, results) for i, n in enumerate(names)],
        skipped=drift.skipped if drift is not None else (),
        anomalies=list(anomalies) if anomalies is not None else None,
    )
    return render_page(title, Markup(page)) if standalone else Markup(page)


def _sizes(reference: DatasetStatistics, current: DatasetStatistics | None) -> Markup:
    """``reference: N rows × K columns`` (and the same of ``current``)."""
    sizes = f"reference: {_shape(reference)}"
    if current is not None:
        sizes += f" · current: {_shape(current)}"
    return Markup(sizes)


def _shape(stats: DatasetStatistics) -> str:
    """``N rows by K columns``, with a multiplication sign (no user text: safe as is)."""
    return f"{stats.num_rows:,} rows &times; {len(stats.columns)} columns"


def _verdicts(drift: DriftReport | None, anomalies: Anomalies | None) -> list[dict[str, str]]:
    """The verdict boxes on top: drift, then anomalies (or "statistics only")."""
    if drift is None and anomalies is None:
        return [{"kind": "", "head": "Statistics only", "detail": "no drift test or validation"}]
    return [v for v in (_drift_verdict(drift), _anomaly_verdict(anomalies)) if v]


def _drift_verdict(drift: DriftReport | None) -> dict[str, str] | None:
    """The data-set drift verdict with the share of drifted columns."""
    if drift is None:
        return None
    drifted, tested = len(drift.drifted_columns), len(drift.columns)
    return {
        "kind": "bad" if drift.drifted else ("warn" if drifted else "good"),
        "head": "Dataset drift detected" if drift.drifted else "No drift",
        "detail": f"{drifted} of {tested} columns drifted ({drift.drifted_share:.0%}); "
        f"the data set drifts at {drift.drift_share:.0%}",
    }


def _anomaly_verdict(anomalies: Anomalies | None) -> dict[str, str] | None:
    """Counts of anomaly errors and warnings."""
    if anomalies is None:
        return None
    errors, warnings = len(anomalies.errors), len(anomalies.warnings)
    return {
        "kind": "bad" if errors else ("warn" if warnings else "good"),
        "head": "Schema valid" if anomalies.ok else "Schema broken",
        "detail": f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}",
    }


def _statistic(result: ColumnDrift) -> str:
    """The test statistic, with the p-value for hypothesis tests."""
    text = format_number(result.statistic)
    if result.p_value is not None:
        text += f" (p = {result.p_value:.3g})"
    return text


def _threshold(result: ColumnDrift) -> str:
    """What the score is compared with: ``p < 0.05`` or ``> 0.1``."""
    if result.p_value is not None:
        return f"p < {result.threshold:g}"
    return f"> {result.threshold:g}"


def _missing(reference: ColumnStatistics | None, current: ColumnStatistics | None) -> str:
    """Missing share in each data set that has the column (``ref → current``)."""
    sides = [f"{c.missing_fraction:.1%}" if c is not None else "—" for c in (reference, current)]
    return sides[0] if current is None and reference is not None else " → ".join(sides)


def _column_view(
    index: int,
    name: str,
    reference_stats: DatasetStatistics,
    current_stats: DatasetStatistics | None,
    results: dict[str, ColumnDrift],
) -> dict[str, Any]:
    """What the summary row and the card of one column show: type, drift test and verdict,
    missing share, plot and key statistics."""
    reference, current = _column(reference_stats, name), _column(current_stats, name)
    column = reference or current
    assert column is not None
    result = results.get(name)
    present = [(label, c) for label, c in (("reference", reference), ("current", current)) if c]
    facts = [dict(_column_facts(c)) for _, c in present]
    return {
        "index": index,
        "name": name,
        "type": column.type,
        "result": result,
        "statistic": _statistic(result) if result else "",
        "threshold": _threshold(result) if result else "",
        "missing": _missing(reference, current),
        "plot": Markup(_plot(reference, current)),
        "sides": [label for label, _ in present],
        "facts": facts,
        "fact_names": list(dict.fromkeys(key for side in facts for key in side)),
    }


def _plot(reference: ColumnStatistics | None, current: ColumnStatistics | None) -> str:
    """The column's distribution plot, reference and current overlaid."""
    sides = [(reference, "reference", REFERENCE_COLOUR), (current, "current", CURRENT_COLOUR)]
    numeric = [Series(label, c.numeric, colour) for c, label, colour in sides if c and c.numeric]
    if numeric:
        timestamp = any(c is not None and c.type == "timestamp" for c in (reference, current))
        integer = all(c is None or c.type == "int" for c in (reference, current))
        return numeric_plot(numeric, timestamp=timestamp, integer=integer)
    categories = [
        Series(label, c.categories, colour) for c, label, colour in sides if c and c.categories
    ]
    if categories:
        return category_plot(categories)
    return empty_plot("no values to plot for this type")


def _column_facts(column: ColumnStatistics) -> list[tuple[str, str]]:
    """The key statistics of one column, formatted."""
    facts = [
        ("rows", f"{column.count:,}"),
        ("missing", f"{column.missing:,} ({column.missing_fraction:.1%})"),
    ]
    numeric, categories = column.numeric, column.categories
    if numeric is not None and numeric.count:
        show = format_time if column.type == "timestamp" else format_number
        median = numeric.quantiles([0.5])[0]
        unit = " s" if column.type == "timestamp" else ""
        facts += [("mean", show(numeric.mean)), ("std", format_number(numeric.std) + unit)]
        facts += [("min", show(float(numeric.min or 0.0))), ("median", show(median))]
        facts += [("max", show(float(numeric.max or 0.0)))]
        facts += [(k, f"{v:,}") for k, v in (("NaN", numeric.nan), ("±inf", numeric.inf)) if v]
    if categories is not None and categories.total:
        value, count = categories.top(1)[0]
        facts += [("distinct", f"{categories.distinct:,}")]
        facts += [("top", f"{value} ({count / categories.total:.1%})")]
    return facts


def _column(stats: DatasetStatistics | None, name: str) -> ColumnStatistics | None:
    """The column's statistics, or None when that data set lacks it."""
    return stats[name] if stats is not None and name in stats else None
