"""Project templates for ``ctloop init``: a working ML project (pipeline, schema, tests
using :mod:`ctloop.testing`, ``ctloop.yaml`` with test/staging/prod environments, GitHub
and GitLab CI, a Makefile and a README) rendered from Jinja2 files shipped in the package.

>>> from ctloop.templates import TEMPLATES
>>> sorted(TEMPLATES)
['regression', 'tabular']
>>> render_project("churn", "tabular", tmp / "churn")  # doctest: +SKIP
"""

from __future__ import annotations

from ctloop.templates._render import TEMPLATES, check_project_name, render_project

__all__ = ["TEMPLATES", "check_project_name", "render_project"]
