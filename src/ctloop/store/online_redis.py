"""The Redis online store (``pip install ctloop[redis]``): one Redis string per feature
view and entity key, ``<prefix>:<view>:<entity key>``.

A value is the event and created times (20 digits each, so that text order is time
order) followed by the JSON array of feature values. A write sends one ``MULTI``/``EXEC``
transaction of Lua calls that each store the newer of the stored and the given value for
a batch of keys: all of it or, if the connection fails first, none of it. A read is one
``MGET`` for every key of every view: one round trip.

    store = RedisOnlineStore("redis://127.0.0.1:6379/0?prefix=flights")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ctloop.errors import StoreError, StoreUnavailableError
from ctloop.store.online import BATCH, OnlineStore, OnlineValue, Row

__all__ = ["RedisOnlineStore"]

_STAMP = 40  # characters of event and created time in front of the payload

# KEYS: the keys; ARGV: their values. Keeps the greater value by its first 40 characters.
_UPSERT = """
local changed = 0
for i, key in ipairs(KEYS) do
  local new = ARGV[i]
  local old = redis.call('GET', key)
  if (not old) or string.sub(old, 1, 40) < string.sub(new, 1, 40) then
    redis.call('SET', key, new)
    changed = changed + 1
  end
end
return changed
"""


def _encode(event_us: int, created_us: int, payload: str) -> str:
    return f"{event_us:020d}{created_us:020d}{payload}"


class RedisOnlineStore(OnlineStore):
    """Feature values in the Redis server at ``url`` (``redis://host:port/db``, optional
    ``?prefix=`` naming this project's keys, default ``ctloop``)."""

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = prefix or query.pop("prefix", ["ctloop"])[0]
        rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
        self.url = urlunsplit(parts._replace(query=rest))
        self._client: Any = None
        self._script: Any = None

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.url!r}, prefix={self.prefix!r})"

    def _redis(self) -> Any:
        if self._client is None:
            try:
                import redis
            except ImportError as exc:
                raise StoreError(
                    "the Redis online store needs the redis package; "
                    "install it with `pip install ctloop[redis]`"
                ) from exc
            self._client = redis.Redis.from_url(self.url)
            self._script = self._client.register_script(_UPSERT)
        return self._client

    def _key(self, view: str, key: str) -> str:
        return f"{self.prefix}:{view}:{key}"

    def _call(self, what: str, work: Any) -> Any:
        import redis

        try:
            return work()
        except redis.ConnectionError as exc:
            raise StoreUnavailableError(
                f"the Redis online store at {self.url} cannot be reached ({exc}) while "
                f"{what}; start redis-server or fix CTLOOP_ONLINE_STORE_URL"
            ) from exc
        except redis.RedisError as exc:
            raise StoreError(f"the Redis online store failed while {what}: {exc}") from exc

    def write(self, view: str, rows: Iterable[Row]) -> int:
        """One transaction of batched compare-and-set calls."""
        client = self._redis()
        latest: dict[str, str] = {}
        for key, event_us, created_us, payload in rows:
            latest[self._key(view, key)] = _encode(event_us, created_us, payload)

        def work() -> int:
            self._script.sha = client.script_load(_UPSERT)
            pipe = client.pipeline(transaction=True)
            keys = list(latest)
            for i in range(0, len(keys), BATCH):
                batch = keys[i : i + BATCH]
                pipe.evalsha(self._script.sha, len(batch), *batch, *(latest[k] for k in batch))
            return sum(int(n) for n in pipe.execute())

        return int(self._call(f"writing feature view {view!r}", work))

    def read(self, keys: Mapping[str, Sequence[str]]) -> dict[str, list[OnlineValue | None]]:
        """One MGET for every key of every view."""
        client = self._redis()
        names = [self._key(view, k) for view, wanted in keys.items() for k in wanted]
        values = self._call("reading features", lambda: client.mget(names)) if names else []
        out: dict[str, list[OnlineValue | None]] = {}
        at = 0
        for view, wanted in keys.items():
            chunk = values[at : at + len(wanted)]
            at += len(wanted)
            out[view] = [
                None if v is None else OnlineValue(int(v[:20]), v[_STAMP:].decode("utf-8"))
                for v in chunk
            ]
        return out

    def drop(self, view: str) -> None:
        """Delete the view's keys (SCAN, then DEL in batches)."""
        client = self._redis()

        def work() -> None:
            batch: list[bytes] = []
            for name in client.scan_iter(match=f"{self.prefix}:{view}:*", count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)

        self._call(f"dropping feature view {view!r}", work)

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None
