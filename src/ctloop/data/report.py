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

from html import escape

from ctloop.data.anomalies import Anomalies
from ctloop.data.drift import ColumnDrift, DriftReport
from ctloop.data.report_svg import (
    CURRENT_COLOUR,
    REFERENCE_COLOUR,
    Series,
    category_plot,
    empty_plot,
    format_number,
    format_time,
    numeric_plot,
)
from ctloop.data.statistics import ColumnStatistics, DatasetStatistics

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;background:#f5f6f8;color:#1d2330;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:20px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}
h3{font-size:15px;margin:0 0 6px;word-break:break-all}
.sub,.muted{color:#6b7280}
.verdicts{display:flex;gap:12px;flex-wrap:wrap;margin-top:14px}
.verdict{border-radius:8px;padding:10px 14px;background:#fff;border-left:6px solid #9ca3af}
.verdict b{display:block;font-size:16px}
.bad{border-color:#d62728}.warn{border-color:#f2a900}.good{border-color:#2ca02c}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drifted td{background:#fdecec}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;color:#fff}
.badge.bad{background:#d62728}.badge.good{background:#2ca02c}.badge.warn{background:#b07d00}
.badge.none{background:#9ca3af}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
.card{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 2px #0000001a}
.card table{margin-top:6px;font-size:13px}
svg.plot{display:block;max-width:100%;height:auto}
svg.plot text{font-size:11px;fill:#374151}
svg.plot text.muted{fill:#6b7280}
svg.plot .axis{stroke:#6b7280}svg.plot .grid{stroke:#e5e7eb}
a{color:#1f5fa8;text-decoration:none}
"""


def render_report(
    *,
    title: str,
    reference: DatasetStatistics,
    current: DatasetStatistics | None = None,
    drift: DriftReport | None = None,
    anomalies: Anomalies | None = None,
) -> str:
    """The report as one self-contained HTML page.

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
    return "".join(
        [
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
            _header(title, reference, current, drift, anomalies),
            _summary(names, reference, current, results if drift is not None else None),
            _skipped(drift),
            _anomaly_table(anomalies),
            _cards(names, reference, current, results),
            "</main></body></html>\n",
        ]
    )


def _header(
    title: str,
    reference: DatasetStatistics,
    current: DatasetStatistics | None,
    drift: DriftReport | None,
    anomalies: Anomalies | None,
) -> str:
    """Title, data set sizes and the verdicts."""
    sizes = f"reference: {_shape(reference)}"
    if current is not None:
        sizes += f" · current: {_shape(current)}"
    verdicts = [_drift_verdict(drift), _anomaly_verdict(anomalies)]
    if drift is None and anomalies is None:
        verdicts = ['<div class="verdict"><b>Statistics only</b>no drift test or validation</div>']
    cards = "".join(v for v in verdicts if v)
    return (
        f'<header><h1>{escape(title)}</h1><div class="sub">{sizes}</div>'
        f'<div class="verdicts">{cards}</div></header>'
    )


def _shape(stats: DatasetStatistics) -> str:
    """``N rows by K columns``, with a multiplication sign (no user text: safe as is)."""
    return f"{stats.num_rows:,} rows &times; {len(stats.columns)} columns"


def _drift_verdict(drift: DriftReport | None) -> str:
    """The data-set drift verdict with the share of drifted columns."""
    if drift is None:
        return ""
    drifted, tested = len(drift.drifted_columns), len(drift.columns)
    kind = "bad" if drift.drifted else ("warn" if drifted else "good")
    head = "Dataset drift detected" if drift.drifted else "No drift"
    detail = (
        f"{drifted} of {tested} columns drifted ({drift.drifted_share:.0%}); "
        f"the data set drifts at {drift.drift_share:.0%}"
    )
    return f'<div class="verdict {kind}"><b>{head}</b>{escape(detail)}</div>'


def _anomaly_verdict(anomalies: Anomalies | None) -> str:
    """Counts of anomaly errors and warnings."""
    if anomalies is None:
        return ""
    errors, warnings = len(anomalies.errors), len(anomalies.warnings)
    kind = "bad" if errors else ("warn" if warnings else "good")
    head = "Schema valid" if anomalies.ok else "Schema broken"
    detail = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return f'<div class="verdict {kind}"><b>{head}</b>{detail}</div>'


def _summary(
    names: list[str],
    reference: DatasetStatistics,
    current: DatasetStatistics | None,
    results: dict[str, ColumnDrift] | None,
) -> str:
    """One row per column: type, test, statistic, threshold, verdict (with a drift report),
    missing share."""
    headings = ["Column", "Type", "Test", "Statistic", "Threshold", "Drifted", "Missing %"]
    if results is None:
        headings = ["Column", "Type", "Missing %"]
    head = "".join(f"<th>{h}</th>" for h in headings)
    rows = [_summary_row(i, name, reference, current, results) for i, name in enumerate(names)]
    return (
        f"<h2>Summary</h2><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _summary_row(
    index: int,
    name: str,
    reference: DatasetStatistics,
    current: DatasetStatistics | None,
    results: dict[str, ColumnDrift] | None,
) -> str:
    """The summary row of one column."""
    column = _column(reference, name) or _column(current, name)
    assert column is not None
    cells = [f'<a href="#column-{index}">{escape(name)}</a>', escape(column.type)]
    result = results.get(name) if results is not None else None
    if results is not None:
        cells += _drift_cells(result)
    cells.append(_missing(_column(reference, name), _column(current, name)))
    css = ' class="drifted"' if result is not None and result.drifted else ""
    return f"<tr{css}>{''.join(f'<td>{c}</td>' for c in cells)}</tr>"


def _drift_cells(result: ColumnDrift | None) -> list[str]:
    """Test, statistic, threshold and verdict of one column (dashes when not tested)."""
    if result is None:
        return ["—", "—", "—", _badge(None)]
    return [escape(result.test), _statistic(result), _threshold(result), _badge(result)]


def _statistic(result: ColumnDrift) -> str:
    """The test statistic, with the p-value for hypothesis tests."""
    text = format_number(result.statistic)
    if result.p_value is not None:
        text += f" (p = {result.p_value:.3g})"
    return escape(text)


def _threshold(result: ColumnDrift) -> str:
    """What the score is compared with: ``p < 0.05`` or ``> 0.1``."""
    if result.p_value is not None:
        return escape(f"p < {result.threshold:g}")
    return escape(f"> {result.threshold:g}")


def _badge(result: ColumnDrift | None) -> str:
    """A coloured drifted / stable / not tested badge."""
    if result is None:
        return '<span class="badge none">not tested</span>'
    if result.drifted:
        return '<span class="badge bad">drifted</span>'
    return '<span class="badge good">stable</span>'


def _missing(reference: ColumnStatistics | None, current: ColumnStatistics | None) -> str:
    """Missing share in each data set that has the column (``ref → current``)."""
    sides = [f"{c.missing_fraction:.1%}" if c is not None else "—" for c in (reference, current)]
    return escape(sides[0] if current is None and reference is not None else " → ".join(sides))


def _skipped(drift: DriftReport | None) -> str:
    """Columns the drift test left out, with the reason."""
    if drift is None or not drift.skipped:
        return ""
    items = "".join(f"<li>{escape(name)}: {escape(reason)}</li>" for name, reason in drift.skipped)
    return f'<p class="muted">Not tested for drift:</p><ul class="muted">{items}</ul>'


def _anomaly_table(anomalies: Anomalies | None) -> str:
    """Every anomaly: column, kind, expected, seen, severity."""
    if anomalies is None:
        return ""
    if not len(anomalies):
        return '<h2>Anomalies</h2><p class="muted">None: the data matches its schema.</p>'
    head = "".join(f"<th>{h}</th>" for h in ("Column", "Kind", "Expected", "Seen", "Severity"))
    rows = []
    for a in anomalies:
        kind = "bad" if a.severity == "error" else "warn"
        cells = [
            escape(a.column) if a.column is not None else '<span class="muted">data set</span>',
            escape(a.kind),
            escape(a.expected),
            escape(a.seen),
            f'<span class="badge {kind}">{escape(a.severity)}</span>',
        ]
        rows.append(f"<tr>{''.join(f'<td>{c}</td>' for c in cells)}</tr>")
    return (
        f"<h2>Anomalies</h2><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _cards(
    names: list[str],
    reference: DatasetStatistics,
    current: DatasetStatistics | None,
    results: dict[str, ColumnDrift],
) -> str:
    """One card per column: name, verdict, plot and key statistics."""
    cards = [
        _card(i, name, _column(reference, name), _column(current, name), results.get(name))
        for i, name in enumerate(names)
    ]
    return f'<h2>Columns</h2><div class="cards">{"".join(cards)}</div>'


def _card(
    index: int,
    name: str,
    reference: ColumnStatistics | None,
    current: ColumnStatistics | None,
    result: ColumnDrift | None,
) -> str:
    """The card of one column."""
    column = reference or current
    assert column is not None
    test = ""
    if result is not None:
        verdict = f"{_statistic(result)} (drifts when {_threshold(result)})"
        test = f'<div class="muted">{escape(result.test)}: {verdict}</div>'
    return (
        f'<section class="card" id="column-{index}"><h3>{escape(name)} '
        f'<span class="muted">{escape(column.type)}</span> {_badge(result) if result else ""}</h3>'
        f"{test}{_plot(reference, current)}{_key_statistics(reference, current)}</section>"
    )


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


def _key_statistics(reference: ColumnStatistics | None, current: ColumnStatistics | None) -> str:
    """A small table: one row per statistic, one column per data set."""
    present = [(label, c) for label, c in (("reference", reference), ("current", current)) if c]
    facts = [dict(_column_facts(column)) for _, column in present]
    keys = list(dict.fromkeys(key for side in facts for key in side))
    head = "".join(f"<th>{label}</th>" for label, _ in present)
    body = "".join(
        f"<tr><td>{key}</td>"
        + "".join(f'<td class="num">{escape(side.get(key, "—"))}</td>' for side in facts)
        + "</tr>"
        for key in keys
    )
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"


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
