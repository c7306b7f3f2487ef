"""``ctloop keys``: API keys of the team server, created, listed and revoked on the
workspace directly (whoever can open the workspace's database is its owner).

    ctloop keys create --name ci --role editor --expires 90d   # prints the key once
    ctloop keys list [--json]
    ctloop keys revoke ID
"""

from __future__ import annotations

from typing import Annotated

import typer

from ctloop.cli._common import JsonOpt, command_group

keys_app = command_group("API keys of the team server: create (shown once), list, revoke.")


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the key (ci, ana, …).")],
    role: Annotated[str, typer.Option(help="viewer, editor or admin.")] = "viewer",
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, such as 90d or 12h (default: never).")
    ] = None,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from ctloop.cli.workspace import open_workspace
    from ctloop.durations import parse_duration
    from ctloop.store._operations import current_user
    from ctloop.store.records import utcnow

    _check_role(role)
    expires_at = None
    if expires is not None:
        expires_at = utcnow() + parse_duration(expires, "--expires")
    created = open_workspace().keys.create(
        name, role, created_by=current_user(), expires_at=expires_at
    )
    typer.echo(created.secret)
    until = "never" if expires_at is None else f"{expires_at:%Y-%m-%d %H:%M} UTC"
    typer.echo(
        f"key {created.record.id} ({role}, expires {until}): shown once, store it now", err=True
    )


@keys_app.command("list")
def list_keys(as_json: JsonOpt = False) -> None:
    """Every key: id, name, role, shown prefix, created, expiry, last use, revocation."""
    from ctloop.cli.output import console, emit_json, when
    from ctloop.cli.workspace import open_workspace

    keys = open_workspace().keys.list()
    if as_json:
        emit_json(keys)
        return
    from rich.table import Table

    table = Table("id", "name", "role", "key", "created", "expires", "last used", "state")
    for key in keys:
        state = "revoked" if key.revoked_at else ("expired" if key.refusal() else "active")
        table.add_row(
            key.id,
            key.name,
            key.role,
            f"{key.prefix}…",
            when(key.created_at),
            when(key.expires_at) if key.expires_at else "never",
            when(key.last_used_at) if key.last_used_at else "-",
            state,
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (ctloop keys list).")]) -> None:
    """Revoke a key: every request with it is refused from now on."""
    from ctloop.cli.workspace import open_workspace

    record = open_workspace().keys.revoke(key_id)
    typer.echo(f"revoked key {record.id} ({record.name!r})")


def _check_role(role: str) -> None:
    from ctloop.store._keys import Role

    if role not in set(Role):
        raise typer.BadParameter(f"role {role!r} is unknown; use one of {', '.join(Role)}")
