"""The HTML page kit: one layout, one stylesheet, escaped values, installed as package data."""

from __future__ import annotations

import doctest
import subprocess
import sys
from importlib import resources

import pytest

import ctloop.pages
from ctloop.errors import CtloopError
from ctloop.pages import Markup, component, render, render_page, static_file, stylesheet

# every template the reports, the model card and the web UI render, by package
TEMPLATES = {
    "ctloop.pages": ["layout.html", "page.html", "components.html"],
    "ctloop.data": ["report.html"],
    "ctloop.registry": ["model_card.html", "model_card_body.html"],
    "ctloop.monitor": ["monitor_report.html"],
    "ctloop.demo": ["demo_report.html"],
}


def test_public_names_are_the_documented_few() -> None:
    public = {k for k in vars(ctloop.pages) if not k.startswith("_")}
    assert set(ctloop.pages.__all__) == public - {"annotations"}
    assert ctloop.pages.__all__ == sorted(ctloop.pages.__all__)


def test_a_page_has_the_layout_and_the_one_stylesheet() -> None:
    page = render_page("Fares <Q1>", Markup("<p>kept</p>"))
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert "<title>Fares &lt;Q1&gt;</title>" in page and "<p>kept</p>" in page
    assert f"<style>{stylesheet()}</style>" in page
    assert page.rstrip().endswith("</body></html>")


def test_values_are_escaped_like_html_escape_and_markup_is_kept() -> None:
    page = render_page("t", "<script>alert('x')</script> & co")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    cell = component("table", ["a"], [[Markup("<b>ok</b>")], ["<i>"]])
    assert "<td><b>ok</b></td>" in cell and "<td>&lt;i&gt;</td>" in cell


def test_components_render_tables_badges_key_values_and_verdicts() -> None:
    table = component("table", ["metric", "value"], [("auc", "0.81"), ("loss", 0.5)], numeric=(1,))
    assert table.count("<tr>") == 3 and '<td class="num">0.81</td>' in table
    assert table.startswith("<table><thead><tr><th>metric</th>")
    assert component("badge", "bad", "failed") == '<span class="badge bad">failed</span>'
    kv = component("kv", [("run", "r1"), ("status", "ok")])
    assert kv.count("<th>") == 2 and "<td>r1</td>" in kv and 'class="kv"' in kv
    box = component("verdict", "good", "No drift", "0 of 3 columns")
    assert box == '<div class="verdict good"><b>No drift</b>0 of 3 columns</div>'


def test_an_unknown_template_or_component_is_a_sentence() -> None:
    with pytest.raises(CtloopError, match=r"page template 'nope\.html' is not installed"):
        render("nope.html")
    with pytest.raises(CtloopError, match="the page kit has no component 'graph'"):
        component("graph")
    with pytest.raises(CtloopError, match=r"static file 'nope\.js' is not installed"):
        static_file("nope.js")


def test_the_stylesheet_is_self_contained() -> None:
    css = stylesheet()
    assert "body{" in css and "#f5f6f8" in css  # the reports' page background
    assert "url(" not in css and "@import" not in css and "http" not in css


@pytest.mark.parametrize("package", sorted(TEMPLATES))
def test_templates_are_package_data(package: str) -> None:
    # importlib.resources reads what an installed wheel holds: the files sit in the package
    folder = resources.files(package).joinpath("templates")
    for name in TEMPLATES[package]:
        assert folder.joinpath(name).is_file(), f"{package}: templates/{name} is missing"
    assert resources.files("ctloop.pages").joinpath("static", "ctloop.css").is_file()


def test_templates_are_not_ignored_so_the_wheel_carries_them() -> None:
    # hatchling builds the wheel from the files git does not ignore
    paths = [f"src/{p.replace('.', '/')}/templates/{n}" for p, ns in TEMPLATES.items() for n in ns]
    paths.append("src/ctloop/pages/static/ctloop.css")
    proc = subprocess.run(["git", "check-ignore", *paths], capture_output=True, text=True)
    assert proc.stdout == "", f"ignored by git, left out of the wheel: {proc.stdout}"


def test_the_kit_imports_nothing_of_ctloop_but_errors() -> None:
    code = (
        "import sys, ctloop; before = set(sys.modules); import ctloop.pages; "
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('ctloop.')"
        " and not m.startswith('ctloop.pages')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("[]", "['ctloop.errors']")


@pytest.mark.parametrize("name", ["ctloop.pages", "ctloop.pages._kit"])
def test_docstring_examples_pass(name: str) -> None:
    module = sys.modules.get(name) or __import__(name, fromlist=["_"])
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
