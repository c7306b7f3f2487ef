"""Alembic migrations of the metadata database, applied automatically on first use.

The Alembic environment ships inside the package (this folder), configured in code: no
``alembic.ini`` is needed in the user's working directory. A store calls
:func:`ensure_schema` once per process and database: one cheap query reads the current
revision; only a database that is behind takes a lock and upgrades, so concurrent first
users (8 processes opening a fresh SQLite file, several workers against one PostgreSQL
database) serialise on the lock and all succeed:

- SQLite: the upgrade runs inside ``BEGIN IMMEDIATE``, which holds the database's write
  lock (other writers wait in ``busy_timeout``);
- PostgreSQL: the upgrade runs under ``pg_advisory_xact_lock``.

Example (the store does this for you)::

    ensure_schema(engine)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from ctloop.errors import StoreError
from ctloop.store._schema import SCHEMA_REVISION, VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATIONS_DIR",
    "WRITE_OPTION",
    "alembic_config",
    "current_revision",
    "ensure_schema",
]

#: the folder with env.py and versions/
MIGRATIONS_DIR = Path(__file__).resolve().parent
#: key of the PostgreSQL advisory lock that serialises migrations ("ctloop" in ASCII)
_PG_LOCK_KEY = 0x6374_6C6F_6F70
#: execution option that makes the store's SQLite engine begin with ``BEGIN IMMEDIATE``
WRITE_OPTION = "ctloop_write"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for ctloop's migrations, optionally bound to a connection.

    >>> alembic_config().get_main_option("script_location").endswith("migrations")
    True
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The database's schema revision, ``None`` for a database ctloop never used."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    row = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return None if row is None else str(row[0])


def ensure_schema(engine: Engine, *, url_for_messages: str = "") -> None:
    """Upgrade the database behind ``engine`` to :data:`SCHEMA_REVISION` if it is behind.

    On SQLite, ``engine`` must begin with ``BEGIN IMMEDIATE`` on connections whose
    execution option :data:`WRITE_OPTION` is true (the store's engine does). A database
    whose revision this ctloop does not know (a newer ctloop migrated it) raises
    :class:`~ctloop.errors.StoreError`.
    """
    with engine.connect() as connection:
        revision = current_revision(connection)
    if revision == SCHEMA_REVISION:
        return
    _check_known(revision, url_for_messages or engine.url.render_as_string())
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if current_revision(connection) != SCHEMA_REVISION:
            _upgrade_to_head(connection)


def _upgrade_to_head(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


def _check_known(revision: str | None, url: str) -> None:
    if revision is None:
        return
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = scripts.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise StoreError(
            f"the metadata database at {url} has schema revision {revision!r}, which this "
            f"version of ctloop does not know (it knows up to {SCHEMA_REVISION!r}); a newer "
            "ctloop migrated it: upgrade ctloop (pip install -U ctloop)"
        )
