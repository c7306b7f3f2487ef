"""``ctloop server``: the team server (REST API v1 with API keys), and its first admin key.

ctloop server                            # 127.0.0.1:8000, API keys required
ctloop server --host 0.0.0.0 --port 8000 # reachable by the team (keys required)
ctloop server --no-auth                  # a laptop only: loopback addresses only
ctloop server bootstrap                  # prints a one-time admin key
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ctloop.config import Settings

server_app = typer.Typer(
    help="The team server: a REST API over this workspace, with API keys and an audit log.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


@server_app.callback()
def server(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Let anyone do anything (allowed on loopback only)."),
    ] = False,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json) until stopped."""
    if ctx.invoked_subcommand is not None:
        return
    from ctloop.cli.output import err_console
    from ctloop.cli.workspace import open_workspace
    from ctloop.server import check_bind, run_server

    check_bind(host, auth=not no_auth)  # refuse before opening anything
    workspace = open_workspace(_served_settings())
    if not no_auth and not workspace.keys.has_admin():
        err_console.print(
            "no admin key exists yet: create one with `ctloop server bootstrap`", soft_wrap=True
        )
    err_console.print(f"ctloop server on http://{host}:{port}/api/v1 ({workspace.location})")
    run_server(workspace, host=host, port=port, auth=not no_auth)


@server_app.command()
def bootstrap(
    force: Annotated[
        bool, typer.Option("--force", help="Create another admin key even if one exists.")
    ] = False,
    name: Annotated[str, typer.Option(help="Name of the key.")] = "admin",
) -> None:
    """Create the first admin key and print it once (it is stored only as a hash)."""
    from ctloop.cli.workspace import open_workspace
    from ctloop.errors import ConfigError
    from ctloop.store._keys import Role
    from ctloop.store._operations import current_user

    workspace = open_workspace(_served_settings())
    if workspace.keys.has_admin() and not force:
        raise ConfigError(
            "an admin key exists already; create more keys with it (`ctloop keys create`) "
            "or pass --force to make another admin key"
        )
    created = workspace.keys.create(name, Role.ADMIN, created_by=current_user())
    typer.echo(created.secret)
    typer.echo(
        f"admin key {created.record.id} ({created.record.prefix}…): shown once, store it "
        "now (for example CTLOOP_TOKEN)",
        err=True,
    )


def _served_settings() -> Settings:
    """This machine's workspace (``CTLOOP_SERVER`` names a server to use, not this one)."""
    from dataclasses import replace

    from ctloop.config import Settings

    return replace(Settings.load(), server=None, token=None)
