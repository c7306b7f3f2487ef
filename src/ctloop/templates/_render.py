"""Rendering a template folder into a new project folder.

Files ending in ``.j2`` are Jinja2 templates (the suffix is dropped); others are copied.
A leading ``dot-`` in a name becomes ``.`` (``dot-github`` → ``.github``), so the shipped
package holds no hidden files. ``_common`` holds what every template shares; a template's
own file of the same name wins.
"""

from __future__ import annotations

import re
from pathlib import Path

from ctloop.errors import ConfigError

__all__ = ["TEMPLATES", "check_project_name", "render_project"]

_ROOT = Path(__file__).parent
TEMPLATES = {
    "tabular": "binary classification of a table (will a customer churn?), gated on AUC",
    "regression": "regression on a table (what will a house sell for?), gated on RMSE",
}
"""Template name → what it builds."""

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def check_project_name(name: str) -> str:
    """``name`` when it can name a project, a folder and a registered model.

    >>> check_project_name("churn")
    'churn'
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"project name {name!r} is not usable: start with a lowercase letter, then "
            "lowercase letters, digits, '-' or '_' (at most 63), e.g. churn or house-prices"
        )
    return name


def render_project(name: str, template: str, destination: Path) -> list[Path]:
    """Write project ``name`` from ``template`` into ``destination`` (new or empty) with
    its sample data; return the files written, relative to ``destination``."""
    import jinja2

    from ctloop._version import __version__
    from ctloop.templates._data import write_data

    check_project_name(name)
    if template not in TEMPLATES:
        raise ConfigError(
            f"template {template!r} is unknown; choose one of {', '.join(sorted(TEMPLATES))}"
        )
    destination = Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ConfigError(
            f"{destination} already exists and is not empty; choose a new folder or empty this one"
        )
    context = {
        "name": name,
        "module": name.replace("-", "_"),
        "template": template,
        "ctloop_version": __version__,
        "ctloop_minor": ".".join(__version__.split(".")[:2]),
    }
    environment = jinja2.Environment(
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False
    )
    written = []
    for relative, source in sorted(_sources(template).items()):
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".j2":
            text = environment.from_string(source.read_text()).render(context)
            target.write_text(text)
        else:
            target.write_bytes(source.read_bytes())
        written.append(Path(relative))
    written.extend(write_data(template, destination))
    return sorted(written)


def _sources(template: str) -> dict[str, Path]:
    """Output path → shipped file, the template's own files over the shared ones."""
    found: dict[str, Path] = {}
    for folder in (_ROOT / "_common", _ROOT / template):
        for path in folder.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                found[_output_name(path.relative_to(folder))] = path
    return found


def _output_name(relative: Path) -> str:
    parts = [
        "." + part[len("dot-") :] if part.startswith("dot-") else part for part in relative.parts
    ]
    name = "/".join(parts)
    return name[: -len(".j2")] if name.endswith(".j2") else name
