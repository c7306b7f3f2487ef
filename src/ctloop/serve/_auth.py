"""API keys on the prediction server (``ctloop serve --auth``): the keys of the
workspace's :class:`~ctloop.store._keys.KeyStore`, the same ones ``ctloop server`` takes.

A key's check costs no database query on the hot path: a key once looked up is kept
(by its SHA-256, never the key itself) for :data:`KEY_CACHE_SECONDS`, so a revoked key
stops working within that time; an expiry is checked on every request against the kept
record, so it is exact. An unknown key is kept as unknown for the same time, so a client
retrying a wrong key does not reach the database on every try. ``last_used_at`` is
written at most once a minute per key, off the event loop.

>>> guard = KeyGuard(None)  # doctest: +SKIP
>>> await guard.caller("Bearer ctl_…")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from ctloop.errors import PredictionRequestError
from ctloop.store._keys import KEY_PREFIX, ApiKeyRecord, Role, hash_key
from ctloop.store.records import utcnow

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from concurrent.futures import Executor

    from ctloop.store._keys import KeyStore

__all__ = ["KEY_CACHE_SECONDS", "KeyGuard", "bearer_secret", "needs"]

KEY_CACHE_SECONDS = 5.0
"""How long a looked-up key is trusted before it is read again (a revocation's delay)."""

_TOUCH_EVERY_S = 60.0
_MOST_KEPT = 10_000  # distinct keys kept; past it the cache starts over


@dataclass(frozen=True)
class _Kept:
    record: ApiKeyRecord | None  # None: no such key
    until: float


class KeyGuard:
    """Finds the key of a request and refuses a missing, unknown, expired or revoked one
    (401) or one whose role is too low (403), as ``{"error", "field": "authorization"}``.
    """

    def __init__(
        self,
        keys: KeyStore,
        *,
        executor: Executor | None = None,
        cache_seconds: float = KEY_CACHE_SECONDS,
    ) -> None:
        self.keys = keys
        self.executor = executor
        self.cache_seconds = cache_seconds
        self._kept: dict[str, _Kept] = {}
        self._touched: dict[str, float] = {}

    async def caller(self, authorization: str) -> ApiKeyRecord:
        """The usable key that the ``Authorization`` header ``authorization`` carries."""
        secret = bearer_secret(authorization)
        digest = hash_key(secret)
        now = time.monotonic()
        kept = self._kept.get(digest)
        if kept is None or kept.until <= now:
            record = await self._in_thread(lambda: self.keys.find(secret))
            if len(self._kept) >= _MOST_KEPT:
                self._kept.clear()
            kept = self._kept[digest] = _Kept(record, now + self.cache_seconds)
        key = kept.record
        if key is None:
            raise _refused(
                "the API key is not known to this server; create one with "
                "`ctloop keys create --role viewer` (or editor to post labels)"
            )
        refusal = key.refusal()
        if refusal is not None:
            raise _refused(f"{refusal}; create a new key with `ctloop keys create`")
        self._touch(key.id, now)
        return key

    async def require(self, authorization: str, needed: Role, what: str) -> ApiKeyRecord:
        """The caller's key, once its role is checked to allow ``needed``."""
        key = await self.caller(authorization)
        if not Role(key.role).allows(needed):
            raise PredictionRequestError(
                f"{what} needs a key with the {needed} role; key {key.prefix}… "
                f"({key.name!r}) has the {key.role} role",
                status=403,
                field="authorization",
            )
        return key

    async def _in_thread(self, read: Callable[[], ApiKeyRecord | None]) -> ApiKeyRecord | None:
        return await asyncio.get_running_loop().run_in_executor(self.executor, read)

    def _touch(self, key_id: str, now: float) -> None:
        last = self._touched.get(key_id)
        if last is not None and now - last < _TOUCH_EVERY_S:
            return
        self._touched[key_id] = now
        at = utcnow()
        future = asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: self.keys.touch(key_id, at)
        )
        future.add_done_callback(_ignore_failure)


def _ignore_failure(future: asyncio.Future[None]) -> None:
    # last_used_at is a hint; a store that cannot take it must not fail requests
    future.exception()


def bearer_secret(authorization: str) -> str:
    """The key in an ``Authorization: Bearer ctl_…`` header; a missing or malformed
    header is a 401 :class:`~ctloop.errors.PredictionRequestError` naming the header
    (the team server parses its keys with this too)."""
    scheme, _, secret = authorization.strip().partition(" ")
    if not scheme:
        raise _refused(
            "this request needs an API key: send `Authorization: Bearer ctl_…` "
            "(create a key with `ctloop keys create`)"
        )
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(KEY_PREFIX):
        raise _refused(
            f"the Authorization header must be `Bearer {KEY_PREFIX}…` with a ctloop API key; "
            "got another form (its value is not repeated here)"
        )
    return secret


def _refused(message: str) -> PredictionRequestError:
    return PredictionRequestError(message, status=401, field="authorization")


def needs(guard: KeyGuard, role: Role) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that refuses a request without a key allowing ``role``."""

    async def dependency(request: Request) -> None:
        what = f"{request.method} {request.url.path}"
        await guard.require(request.headers.get("authorization", ""), role, what)

    dependency.__name__ = f"needs_{role}"
    return dependency
