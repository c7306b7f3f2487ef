"""Run ``ctloop`` with the ``models`` commands added, as ``python tests/registry/_cli.py …``.

The same app and error handling as ``python -m ctloop``; the ``models`` group is added
here unless the app already has it.
"""

from __future__ import annotations

from ctloop.cli.app import app, run_app
from ctloop.cli.models import models_app

if not any(group.name == "models" for group in app.registered_groups):
    app.add_typer(models_app, name="models")

if __name__ == "__main__":
    run_app()
