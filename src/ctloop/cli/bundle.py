"""``ctloop bundle``: a deployable folder for one model version.

ctloop bundle flights@champion -o bundle/
ctloop serve bundle/                      # serves it without the workspace
docker build -t flights:3 bundle/
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["bundle"]


def bundle(
    reference: Annotated[str, typer.Argument(help="MODEL@ALIAS or MODEL@VERSION.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="New or empty folder.")],
    image: Annotated[
        str | None,
        typer.Option(help="Container image the manifests name [default: MODEL:VERSION]."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port the container serves on.")] = 8080,
    ctloop_requirement: Annotated[
        str | None,
        typer.Option(
            help="ctloop's line in requirements.txt [default: ctloop==THIS_VERSION]; "
            "a wheel path or URL where ctloop is not on your package index."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a folder that is not empty.")
    ] = False,
    code: Annotated[
        list[Path] | None,
        typer.Option(
            "--code",
            help="A file or folder to carry in code/ (repeatable): modules the model's "
            "transform imports. The transform's own module is carried without it.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Write a deployable bundle: the model as stored, pinned requirements, an entrypoint,
    a Dockerfile, Kubernetes, KServe and MLServer manifests, and bundle.json (lineage, digests)."""
    from ctloop.bundle import build_bundle
    from ctloop.cli.output import console, emit_json
    from ctloop.cli.workspace import open_workspace

    with open_workspace() as workspace:
        info = build_bundle(
            workspace,
            reference,
            output,
            image=image,
            port=port,
            ctloop_requirement=ctloop_requirement,
            force=force,
            code=code or [],
        )
    if as_json:
        emit_json(info)
        return
    console.print(
        f"wrote {info.reference} to {output} ({len(info.files)} files, {info.size / 1e6:.2f} MB)",
        markup=False,
    )
    console.print(
        f"serve it: ctloop serve {output}   build it: docker build {output}", markup=False
    )
