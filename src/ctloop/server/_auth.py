"""Who is calling: API keys in ``Authorization: Bearer ctl_…``, checked against the
workspace's :class:`~ctloop.store._keys.KeyStore`, and the role each route needs.

A missing, unknown, expired or revoked key is a 401; a key whose role is too low a 403.
The key itself is never logged or stored: only its SHA-256 is looked up. ``last_used_at``
is written at most once a minute per key, so a busy client costs no write per request.
A key found is kept in memory by its hash for :data:`CACHE_S` seconds, so a busy client
costs no query per request either: a key revoked elsewhere (``ctloop keys revoke`` on
the database) is refused within that time, one revoked through this server at once, and
an expiry is checked on every request.

>>> Caller.anonymous().role
<Role.ADMIN: 'admin'>
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ctloop.server._errors import AuthenticationError, PermissionDeniedError
from ctloop.store._keys import KEY_PREFIX, ApiKeyRecord, Role, hash_key
from ctloop.store.records import utcnow

if TYPE_CHECKING:
    from fastapi import Request

    from ctloop.store._keys import KeyStore

__all__ = ["Authenticator", "Caller"]

#: seconds between two writes of one key's ``last_used_at``
TOUCH_EVERY_S = 60.0
#: seconds a key found in the store is trusted without asking the store again
CACHE_S = 2.0


@dataclass(frozen=True)
class Caller:
    """The key a request came with (``None`` when the server runs without auth)."""

    key: ApiKeyRecord | None
    role: Role

    @classmethod
    def anonymous(cls) -> Caller:
        """Anyone, on a server started with ``--no-auth``: may do everything."""
        return cls(None, Role.ADMIN)

    @property
    def name(self) -> str:
        """The key's name, ``anonymous`` without auth."""
        return "anonymous" if self.key is None else self.key.name

    @property
    def key_id(self) -> str | None:
        """The key's id, ``None`` without auth."""
        return None if self.key is None else self.key.id


class Authenticator:
    """Finds the caller of a request and refuses a role that is too low.

    >>> Authenticator(None, enabled=False).caller("")  # doctest: +ELLIPSIS
    Caller(key=None, role=<Role.ADMIN: 'admin'>)
    """

    def __init__(self, keys: KeyStore | None, *, enabled: bool = True) -> None:
        self.keys = keys
        self.enabled = enabled
        self._touched: dict[str, float] = {}
        self._found: dict[str, tuple[ApiKeyRecord, float]] = {}
        self._lock = threading.Lock()

    def caller(self, authorization: str) -> Caller:
        """The caller whose ``Authorization`` header is ``authorization``."""
        if not self.enabled or self.keys is None:
            return Caller.anonymous()
        secret = _bearer(authorization)
        key = self._find(secret)
        if key is None:
            raise AuthenticationError(
                "the API key is not known to this server; create one with `ctloop keys create`"
            )
        refusal = key.refusal()
        if refusal is not None:
            raise AuthenticationError(f"{refusal}; create a new key with `ctloop keys create`")
        self._touch(key.id, utcnow())
        return Caller(key, Role(key.role))

    def cached_caller(self, authorization: str) -> Caller | None:
        """The caller of ``authorization`` when finding it needs no store call: auth is
        off, or its key was found a moment ago, is still valid and was touched less than
        :data:`TOUCH_EVERY_S` ago. ``None`` otherwise (and for every refusal): then
        :meth:`caller` decides."""
        if not self.enabled or self.keys is None:
            return Caller.anonymous()
        scheme, _, secret = authorization.strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith(KEY_PREFIX):
            return None
        tick = time.monotonic()
        with self._lock:
            held = self._found.get(hash_key(secret))
            if held is None or tick - held[1] >= CACHE_S:
                return None
            key = held[0]
            touched = self._touched.get(key.id)
        if touched is None or tick - touched >= TOUCH_EVERY_S or key.refusal() is not None:
            return None
        return Caller(key, Role(key.role))

    def forget(self, key_id: str) -> None:
        """Drop ``key_id`` from the cache (it was revoked): its next use asks the store."""
        with self._lock:
            for digest in [d for d, (k, _) in self._found.items() if k.id == key_id]:
                del self._found[digest]

    def _find(self, secret: str) -> ApiKeyRecord | None:
        """The key of ``secret``: from the cache while fresh, else from the store (an
        unknown key is never cached, so a key created a moment ago works at once)."""
        digest, tick = hash_key(secret), time.monotonic()
        with self._lock:
            held = self._found.get(digest)
        if held is not None and tick - held[1] < CACHE_S:
            return held[0]
        assert self.keys is not None
        key = self.keys.find(secret)
        with self._lock:
            if key is None:
                self._found.pop(digest, None)
            else:
                self._found[digest] = (key, tick)
        return key

    def require(self, caller: Caller, needed: Role, what: str) -> None:
        """Refuse ``caller`` (403) unless its role allows ``needed``; ``what`` names the
        request in the sentence."""
        if not caller.role.allows(needed):
            raise PermissionDeniedError(
                f"{what} needs the {needed} role; key {caller.key.prefix if caller.key else ''}… "
                f"({caller.name!r}) has the {caller.role} role"
            )

    def _touch(self, key_id: str, now: datetime) -> None:
        tick = time.monotonic()
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and tick - last < TOUCH_EVERY_S:
                return
            self._touched[key_id] = tick
        assert self.keys is not None
        self.keys.touch(key_id, now)


def _bearer(authorization: str) -> str:
    """The key in an ``Authorization: Bearer ctl_…`` header, parsed as the prediction
    server parses it; a missing or malformed header is an :class:`AuthenticationError`."""
    from ctloop.errors import PredictionRequestError
    from ctloop.serve._auth import bearer_secret

    try:
        return bearer_secret(authorization)
    except PredictionRequestError as exc:
        raise AuthenticationError(str(exc)) from None


def caller_of(request: Request) -> Caller:
    """The caller the auth dependency found for ``request``."""
    caller: Caller = request.state.caller
    return caller
