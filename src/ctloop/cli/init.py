"""``ctloop init``: start a project from a template.

ctloop init churn --template tabular
cd churn && make test
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["init"]


def init(
    name: Annotated[str, typer.Argument(help="Project and model name, e.g. churn.")],
    template: Annotated[
        str, typer.Option(help="tabular (classification) or regression.")
    ] = "tabular",
    directory: Annotated[
        Path | None, typer.Option(help="Folder to create [default: ./NAME].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Create a working project: pipeline, schema, tests, ctloop.yaml with environments,
    CI workflows (GitHub, GitLab), Makefile, README and sample data."""
    from ctloop.templates import render_project

    destination = directory if directory is not None else Path(name)
    written = render_project(name, template, destination)
    if as_json:
        from ctloop.cli.output import emit_json

        emit_json(
            {
                "name": name,
                "template": template,
                "directory": str(destination),
                "files": [p.as_posix() for p in written],
            }
        )
        return
    from ctloop.cli.output import console

    console.print(f"created {destination}/ from the {template} template ({len(written)} files):")
    for path in written:
        console.print(f"  {path.as_posix()}")
    console.print(f"next: cd {destination} && make test && make train", markup=False)
