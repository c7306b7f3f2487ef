"""One HTML page kit for every report, model card and the web UI.

A Jinja2 environment with autoescape, one layout (``layout.html``), one stylesheet
(``static/ctloop.css``) and small components (``components.html``: tables, badges,
key-value lists, verdict boxes). Templates of other packages are named
``package/path``: ``ctloop.data/report.html`` is ``ctloop/data/templates/report.html``.
Every value is HTML-escaped unless it is :class:`Markup`.

>>> from ctloop.pages import Markup, render_page
>>> page = render_page("Fares <Q1>", Markup("<p>hi</p>"))
>>> page.startswith("<!DOCTYPE html>") and "Fares &lt;Q1&gt;" in page and "<p>hi</p>" in page
True
"""

from __future__ import annotations

from markupsafe import Markup

from ctloop.pages._kit import component, environment, render, render_page, static_file, stylesheet

__all__ = [
    "Markup",
    "component",
    "environment",
    "render",
    "render_page",
    "static_file",
    "stylesheet",
]
