"""The key check asks the store once per key per few seconds, and still refuses a
revoked key: at once when revoked through the server, within the cache time otherwise."""

from __future__ import annotations

import pytest

from ctloop.server import AuthenticationError, _auth
from ctloop.server._auth import Authenticator
from ctloop.store._keys import Role
from ctloop.store.memory import MemoryKeyStore


class CountingKeys(MemoryKeyStore):
    """The in-memory key store, counting its lookups."""

    lookups = 0

    def find(self, secret: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return super().find(secret)


def test_a_busy_key_is_looked_up_once_and_a_revoked_one_is_refused() -> None:
    keys = CountingKeys()
    created = keys.create("ci", Role.EDITOR)
    auth = Authenticator(keys)
    header = f"Bearer {created.secret}"
    for _ in range(50):
        assert auth.caller(header).name == "ci"
    assert keys.lookups == 1
    keys.revoke(created.record.id)
    auth.forget(created.record.id)  # what the server's revoke route does
    with pytest.raises(AuthenticationError, match="revoked"):
        auth.caller(header)
    assert keys.lookups == 2


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_time_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = CountingKeys()
    created = keys.create("ci", Role.EDITOR)
    auth = Authenticator(keys)
    header = f"Bearer {created.secret}"
    auth.caller(header)
    keys.revoke(created.record.id)
    assert auth.caller(header).name == "ci"  # trusted for CACHE_S seconds
    monkeypatch.setattr(_auth, "CACHE_S", 0.0)
    with pytest.raises(AuthenticationError, match="revoked"):
        auth.caller(header)
    with pytest.raises(AuthenticationError, match="not known"):
        auth.caller("Bearer ctl_not-a-key")
