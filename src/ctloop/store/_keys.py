"""API keys of the team server (table ``api_keys`` of migration 0004).

A key is ``ctl_`` and 43 random URL-safe characters (256 bits). It is shown once, when it
is created; the store keeps its SHA-256 (a fast hash is enough for a secret this long:
there is nothing to guess) and its first characters as ``prefix``, so lists can show
which key is which without showing the key. Each key has a :class:`Role`, an optional
expiry, the time it was last used and, once revoked, the time it was revoked.

>>> store = SqlKeyStore("sqlite://")
>>> created = store.create("ci", Role.EDITOR, created_by="ana")
>>> created.secret.startswith("ctl_"), store.find(created.secret) == created.record
(True, True)
>>> store.find("ctl_not-a-key") is None
True
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import RowMapping

from ctloop.errors import NotFoundError
from ctloop.store._schema import API_KEYS, to_utc
from ctloop.store._transactions import SqlTransactions
from ctloop.store.records import utcnow

__all__ = [
    "KEY_PREFIX",
    "ApiKeyRecord",
    "CreatedKey",
    "KeyStore",
    "Role",
    "SqlKeyStore",
    "hash_key",
    "missing_key",
    "new_key",
]

#: how every ctloop API key starts, so a leaked one is easy to recognise and scan for
KEY_PREFIX = "ctl_"
#: characters of a key shown in lists: ``ctl_`` and the first 8 random ones
_SHOWN = len(KEY_PREFIX) + 8


class Role(StrEnum):
    """What a key may do; each role may do everything the roles before it may.

    - ``VIEWER``: read everything.
    - ``EDITOR``: also write runs' tags, artifacts and registry aliases other than the
      production ones.
    - ``ADMIN``: also manage keys, move production aliases, read the audit log.

    >>> Role.ADMIN.allows(Role.EDITOR), Role.VIEWER.allows(Role.EDITOR)
    (True, False)
    """

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for a viewer, 1 for an editor, 2 for an admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether a key with this role may do what needs role ``needed``."""
        return self.rank >= Role(needed).rank


@dataclass(frozen=True)
class ApiKeyRecord:
    """One API key, without the key itself. ``role`` is a :class:`Role`."""

    id: str
    name: str
    prefix: str
    role: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def refusal(self, now: datetime | None = None) -> str | None:
        """Why this key may not be used at ``now`` (revoked, expired), ``None`` if it may.

        >>> from datetime import UTC
        >>> key = ApiKeyRecord("k1", "ci", "ctl_ab", "viewer", utcnow(), "", None, None, None)
        >>> key.refusal() is None
        True
        """
        now = now or utcnow()
        if self.revoked_at is not None:
            return f"API key {self.prefix}… ({self.name!r}) was revoked at {self.revoked_at:%Y-%m-%d %H:%M} UTC"
        if self.expires_at is not None and self.expires_at <= now:
            return f"API key {self.prefix}… ({self.name!r}) expired at {self.expires_at:%Y-%m-%d %H:%M} UTC"
        return None


@dataclass(frozen=True)
class CreatedKey:
    """A key just created: its record and the key itself (``secret``), shown once."""

    record: ApiKeyRecord
    secret: str

    def __repr__(self) -> str:
        return f"CreatedKey(record={self.record!r}, secret='{self.record.prefix}…')"


def new_key() -> str:
    """A new random API key: ``ctl_`` and 43 URL-safe characters.

    >>> len(new_key()), new_key()[:4]
    (47, 'ctl_')
    """
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    """The SHA-256 (hex) under which the key ``secret`` is stored.

    >>> hash_key("ctl_x") == hash_key("ctl_x") != hash_key("ctl_y")
    True
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def missing_key(key_id: str) -> NotFoundError:
    """The error for a key id that is not there."""
    return NotFoundError(f"API key {key_id!r} does not exist; list keys with `ctloop keys list`")


def new_key_record(
    name: str, role: str, *, created_by: str, expires_at: datetime | None
) -> tuple[ApiKeyRecord, str]:
    """A record for a new key and the key: the part both stores share. A role that is
    not a :class:`Role` raises ``ValueError`` naming it."""
    checked = _role(role)
    secret = new_key()
    record = ApiKeyRecord(
        id=secrets.token_hex(6),
        name=name,
        prefix=secret[:_SHOWN],
        role=checked,
        created_at=utcnow(),
        created_by=created_by,
        expires_at=None if expires_at is None else to_utc(expires_at),
        last_used_at=None,
        revoked_at=None,
    )
    return record, secret


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ValueError(f"role {role!r} is unknown; use one of {', '.join(Role)}") from None


class KeyStore(ABC):
    """The API keys of a workspace.

    Errors: :meth:`get` and :meth:`revoke` of an id that is not there raise
    :class:`~ctloop.errors.NotFoundError`; :meth:`create` with an unknown role raises
    ``ValueError``; an unreachable backend raises
    :class:`~ctloop.errors.StoreUnavailableError`. :meth:`find` answers ``None`` for a
    key it does not know (a wrong key is an answer, not a failure), and returns revoked
    and expired keys too: whether a key may be used is :meth:`ApiKeyRecord.refusal`.
    """

    def create(
        self,
        name: str,
        role: str,
        *,
        created_by: str = "",
        expires_at: datetime | None = None,
    ) -> CreatedKey:
        """Create a key named ``name`` with ``role``; the result carries the key, which
        is not stored and cannot be read again."""
        record, secret = new_key_record(name, role, created_by=created_by, expires_at=expires_at)
        self._add_key(record, hash_key(secret))
        return CreatedKey(record, secret)

    @abstractmethod
    def _add_key(self, record: ApiKeyRecord, key_hash: str) -> None:
        """Store a new key, found by ``key_hash``, the SHA-256 of its secret."""

    @abstractmethod
    def get(self, key_id: str) -> ApiKeyRecord:
        """The key with this id."""

    @abstractmethod
    def list(self) -> list[ApiKeyRecord]:
        """Every key, revoked and expired ones too, oldest first."""

    @abstractmethod
    def find(self, secret: str) -> ApiKeyRecord | None:
        """The key whose secret is ``secret``, ``None`` if there is none."""

    @abstractmethod
    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke the key (a revoked key keeps its first ``revoked_at``); return it."""

    @abstractmethod
    def touch(self, key_id: str, at: datetime) -> None:
        """Record that the key was used at ``at`` (an earlier time than the stored one
        changes nothing; an unknown id is ignored)."""

    def has_admin(self, now: datetime | None = None) -> bool:
        """Whether a usable (not revoked, not expired) admin key exists."""
        return any(k.role == Role.ADMIN and k.refusal(now) is None for k in self.list())


class SqlKeyStore(SqlTransactions, KeyStore):
    """API keys in the metadata database at ``url``.

    >>> SqlKeyStore("sqlite://").list()
    []
    """

    retry_integrity = True  # two keys drawing one random id: the retry draws again

    def _add_key(self, record: ApiKeyRecord, key_hash: str) -> None:
        values = {**record.__dict__, "hash": key_hash}
        self._write(lambda conn: conn.execute(insert(API_KEYS).values(**values)))

    def get(self, key_id: str) -> ApiKeyRecord:
        """The key with this id."""
        found = self._read(lambda conn: _one(conn, API_KEYS.c.id == key_id))
        if found is None:
            raise missing_key(key_id)
        return found

    def list(self) -> list[ApiKeyRecord]:
        """Every key, oldest first."""
        stmt = select(*_COLUMNS).order_by(API_KEYS.c.created_at, API_KEYS.c.id)
        return self._read(lambda conn: [_record(r) for r in conn.execute(stmt).mappings()])

    def find(self, secret: str) -> ApiKeyRecord | None:
        """The key whose secret is ``secret``, ``None`` if there is none."""
        digest = hash_key(secret)
        return self._read(lambda conn: _one(conn, API_KEYS.c.hash == digest))

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke the key; return it."""
        stmt = (
            update(API_KEYS)
            .where(API_KEYS.c.id == key_id, API_KEYS.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        self._write(lambda conn: conn.execute(stmt))
        return self.get(key_id)

    def touch(self, key_id: str, at: datetime) -> None:
        """Record that the key was used at ``at``."""
        column = API_KEYS.c.last_used_at
        stmt = (
            update(API_KEYS)
            .where(API_KEYS.c.id == key_id, column.is_(None) | (column < to_utc(at)))
            .values(last_used_at=to_utc(at))
        )
        self._write(lambda conn: conn.execute(stmt))


_COLUMNS = [c for c in API_KEYS.c if c.name != "hash"]


def _one(conn: Connection, where: object) -> ApiKeyRecord | None:
    row = conn.execute(select(*_COLUMNS).where(where)).mappings().first()  # type: ignore[arg-type]
    return None if row is None else _record(row)


def _record(row: RowMapping) -> ApiKeyRecord:
    return ApiKeyRecord(**{**dict(row), "role": Role(row["role"])})
