"""The HTML report: self-contained, escaped, one plot per column, with stats alone too."""

from __future__ import annotations

import doctest
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from ctloop.data import (
    Anomalies,
    DatasetStatistics,
    DriftReport,
    compute_statistics,
    detect_drift,
    infer_schema,
    validate,
)
from ctloop.data import _report as report_module
from ctloop.data import (
    _report_svg as report_svg,
)
from ctloop.data._report import render_report
from ctloop.data._report_svg import CURRENT_COLOUR, REFERENCE_COLOUR

SCRIPT = "<script>alert('x')</script>"
VOID = {"meta", "br", "hr", "img", "input", "link", "rect", "path", "line"}


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current data: ``fare`` shifts, ``city`` gains a value, one odd name."""
    rng = np.random.default_rng(7)
    n = 3000
    reference = pd.DataFrame(
        {
            "fare": rng.normal(20.0, 5.0, n),
            "seats": rng.integers(1, 5, n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "paid": rng.random(n) < 0.8,
            "day": pd.date_range("2024-01-01", periods=n, freq="h"),
            SCRIPT: rng.normal(0.0, 1.0, n),
        }
    )
    current = reference.assign(
        fare=reference.fare + 10.0,
        city=np.where(rng.random(n) < 0.4, "Quito & <Co>", reference.city),
    )
    return reference, current


@pytest.fixture(scope="module")
def inputs() -> tuple[DatasetStatistics, DatasetStatistics, DriftReport, Anomalies]:
    reference, current = frames()
    ref, cur = compute_statistics(reference), compute_statistics(current)
    return ref, cur, detect_drift(ref, cur), validate(cur, infer_schema(ref))


@pytest.fixture(scope="module")
def page(inputs: tuple[DatasetStatistics, DatasetStatistics, DriftReport, Anomalies]) -> str:
    ref, cur, drift, anomalies = inputs
    return render_report(
        title="Fares <Q1>", reference=ref, current=cur, drift=drift, anomalies=anomalies
    )


class Outline(HTMLParser):
    """Cards with their plots, every src/href, and whether tags nest properly."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, int]] = []
        self.links: list[str] = []
        self.open: list[str] = []
        self.misnested: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "section" and found.get("class") == "card":
            self.cards.append({"svg": 0, "legend": 0, "marks": 0})
        if self.cards and tag == "svg":
            self.cards[-1]["svg"] += 1
        if self.cards and tag == "g" and found.get("class") == "legend":
            self.cards[-1]["legend"] += 1
        if self.cards and tag in ("path", "rect"):
            self.cards[-1]["marks"] += 1
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.open or self.open.pop() != tag:
            self.misnested.append(tag)


def outline(html: str) -> Outline:
    parser = Outline()
    parser.feed(html)
    parser.close()
    return parser


def test_every_column_has_a_plot_with_a_legend(page: str, inputs: tuple) -> None:
    found = outline(page)
    assert len(found.cards) == len(inputs[0].columns) == 6
    assert all(card["svg"] == 1 and card["legend"] == 1 for card in found.cards)
    assert all(card["marks"] >= 3 for card in found.cards)  # legend swatches and data


def test_tags_nest_properly(page: str) -> None:
    found = outline(page)
    assert found.misnested == [] and found.open == []


def test_no_external_resources(page: str) -> None:
    links = outline(page).links
    assert links and all(link.startswith("#") for link in links)
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?\s*(?:https?:)?//", page)
    assert "http://" not in page and "https://" not in page
    assert "@import" not in page and "url(" not in page


def test_user_text_is_escaped(page: str) -> None:
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Fares &lt;Q1&gt;" in page
    assert "Quito &amp; &lt;Co&gt;" in page


def test_header_gives_the_verdict(page: str, inputs: tuple) -> None:
    drift, anomalies = inputs[2], inputs[3]
    header = page[page.index("<header>") : page.index("</header>")]
    drifted = len(drift.drifted_columns)
    assert drifted == 2 and not drift.drifted  # fare and city of 6 columns
    assert f"{drifted} of 6 columns drifted (33%)" in header
    errors, warnings = len(anomalies.errors), len(anomalies.warnings)
    assert errors > 0
    assert f"{errors} errors, {warnings} warnings" in header


def test_summary_has_a_row_per_column_with_test_and_missing_share(page: str) -> None:
    summary = page[page.index("<h2>Summary</h2>") : page.index("</table>")]
    assert summary.count("<tr") == 7  # header and six columns
    assert summary.count('class="drifted"') == 2
    assert "wasserstein" in summary and "0.0% → 0.0%" in summary


def test_anomalies_are_listed_with_severity(page: str, inputs: tuple) -> None:
    section = page[page.index("<h2>Anomalies</h2>") : page.index("<h2>Columns</h2>")]
    assert section.count("<tr>") == len(inputs[3]) + 1
    assert "out_of_domain" in section and "badge bad" in section


def test_reference_and_current_are_overlaid_in_two_colours(page: str) -> None:
    fare = page[page.index('id="column-0"') : page.index('id="column-1"')]
    assert fare.count("<path") == 2
    assert f'fill="{REFERENCE_COLOUR}"' in fare and f'fill="{CURRENT_COLOUR}"' in fare
    assert ">reference<" in fare and ">current<" in fare


def test_category_bars_show_each_side_s_share(inputs: tuple) -> None:
    reference = pd.DataFrame({"c": ["a"] * 3 + ["b"]})
    current = pd.DataFrame({"c": ["a"] + ["b"] * 3})
    ref, cur = compute_statistics(reference), compute_statistics(current)
    page = render_report(title="c", reference=ref, current=cur)
    plot = page[page.index("<svg") : page.index("</svg>")]
    assert plot.count(">75.0%<") == 2 and plot.count(">25.0%<") == 2


def test_statistics_only_report(inputs: tuple) -> None:
    page = render_report(title="Reference only", reference=inputs[0])
    found = outline(page)
    assert "Statistics only" in page
    assert len(found.cards) == 6 and all(card["svg"] == 1 for card in found.cards)
    assert ">current<" not in page and CURRENT_COLOUR not in page
    body = page[page.index("<body>") :]
    assert "Anomalies" not in body and "drifted" not in body and "Test" not in body


def test_output_is_deterministic(inputs: tuple) -> None:
    ref, cur, drift, anomalies = inputs
    pages = {
        render_report(title="t", reference=ref, current=cur, drift=drift, anomalies=anomalies)
        for _ in range(2)
    }
    assert len(pages) == 1


def test_columns_without_values_still_get_a_plot() -> None:
    stats = compute_statistics(pd.DataFrame({"x": [None, None], "y": [1.0, 1.0]}))
    found = outline(render_report(title="t", reference=stats))
    assert [card["svg"] for card in found.cards] == [1, 1]


def test_bin_shares_read_the_histogram() -> None:
    summary = compute_statistics(pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]}))["x"].numeric
    assert summary is not None
    shares = report_svg.bin_shares(summary, np.array([0.0, 2.0, 4.0]))
    assert shares.tolist() == pytest.approx([0.5, 0.5])


def test_whole_numbers_get_bins_of_equal_whole_width() -> None:
    edges = report_svg.integer_edges(0.0, 99.0)
    assert np.all(np.diff(edges) == 3.0) and edges[0] == -0.5 and edges[-1] == 101.5
    summary = compute_statistics(pd.DataFrame({"x": [5, 6, 6, 7]}))["x"].numeric
    assert summary is not None
    shares = report_svg.bin_shares(summary, report_svg.integer_edges(5.0, 7.0))
    assert shares.tolist() == pytest.approx([0.25, 0.5, 0.25])


def test_long_tails_are_cut_and_said_so() -> None:
    values = np.concatenate([np.random.default_rng(1).normal(0, 1, 5000), [1e6]])
    summary = compute_statistics(pd.DataFrame({"x": values}))["x"].numeric
    assert summary is not None
    low, high, cut = report_svg.numeric_range([summary])
    assert low > -10
    assert cut and high < 10
    assert "not shown" in report_svg.numeric_plot([report_svg.Series("r", summary)])


@pytest.mark.parametrize("module", [report_module, report_svg])
def test_docstring_examples_pass(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0
