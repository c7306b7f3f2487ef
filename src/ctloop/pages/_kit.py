"""The Jinja2 environment, its package loader and the helpers on top of it."""

from __future__ import annotations

import html
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from ctloop.errors import CtloopError

_KIT = "ctloop.pages"


class _PackageTemplates(jinja2.BaseLoader):
    """``layout.html`` from the kit; ``ctloop.data/report.html`` from that package's
    ``templates/`` folder (package data, so a wheel carries it)."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Any]:
        package, name = _split(template)
        try:
            found = resources.files(package).joinpath("templates", *name.split("/"))
            source = found.read_text(encoding="utf-8")
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError) as exc:
            raise jinja2.TemplateNotFound(template) from exc
        return source, str(found), lambda: True


def _split(template: str) -> tuple[str, str]:
    head, _, rest = template.partition("/")
    if rest and head.startswith("ctloop."):
        return head, rest
    return _KIT, template


def _escape(value: Any) -> Any:
    """One escaping for the house: :func:`html.escape` (quotes too), Markup left alone."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape("" if value is None else str(value)))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The kit's environment (autoescape on, undefined names are errors).

    >>> environment().from_string("{{ x }}").render(x="<b>")
    '&lt;b&gt;'
    """
    env = jinja2.Environment(
        loader=_PackageTemplates(),
        autoescape=True,
        finalize=_escape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["stylesheet"] = stylesheet
    return env


def render(template: str, **context: Any) -> str:
    """Render a template of the kit or of a package (``ctloop.data/report.html``).

    >>> "<table>" in render("components.html")
    False
    """
    try:
        return environment().get_template(template).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise CtloopError(f"page template '{template}' is not installed with ctloop") from exc


def render_page(title: str, body: str | Markup, *, script: str | Markup = "") -> str:
    """A self-contained page: the layout with the stylesheet inline and ``body`` in ``<main>``.

    >>> render_page("t", "<x>").count("&lt;x&gt;")
    1
    """
    return render("page.html", title=title, body=body, script=script)


def component(name: str, *args: Any, **kwargs: Any) -> Markup:
    """One macro of ``components.html`` called from Python (``table``, ``badge``, ``kv``…).

    >>> str(component("badge", "good", "stable"))
    '<span class="badge good">stable</span>'
    """
    macro = getattr(environment().get_template("components.html").module, name, None)
    if macro is None:
        raise CtloopError(f"the page kit has no component '{name}'")
    return Markup(str(macro(*args, **kwargs)).strip())


@lru_cache(maxsize=8)
def static_file(name: str) -> bytes:
    """The bytes of a file under the kit's ``static/`` folder (the stylesheet, scripts)."""
    try:
        return resources.files(_KIT).joinpath("static", *name.split("/")).read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise CtloopError(f"static file '{name}' is not installed with ctloop") from exc


def stylesheet() -> Markup:
    """The house stylesheet, to inline in a ``<style>`` element."""
    return Markup(static_file("ctloop.css").decode("utf-8").strip())
