"""The Redis online store (``pip install ctloop[redis]``): one Redis string per feature
view and entity key, ``<prefix>:<view>:<entity key>``.

A value is the event and created times (20 digits each, so that text order is time
order) followed by the JSON array of feature values. A write streams: each batch of rows
it is given (:data:`~ctloop.store._online.BATCH` rows at most) is one round trip, a
pipeline of Lua calls that each store, for :data:`SCRIPT_ROWS` keys, the newer of the
stored and the given value (standalone Redis, not Redis Cluster). The next batch is made
while the server applies the one before, so the client holds two batches whatever the
row count. Redis runs one call at a time: a call is atomic, and other clients wait for
one call at most (a few ms), not for the whole write.

A write is therefore not all or nothing: when it fails part way, the batches before stay
written. That is safe to retry: every value only ever replaces an older one, so the same
rows written again change nothing, and materialization moves its watermark only once the
whole write succeeded. A read is one round trip for every key of every view: an ``MGET``
inside a Lua call that answers one JSON array (decoded by orjson in one call, rather than
a reply per key; a plain ``MGET`` for one key or very many).

    store = RedisOnlineStore("redis://127.0.0.1:6379/0?prefix=flights")
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ctloop.errors import StoreError, StoreUnavailableError
from ctloop.store._online import (
    BATCH,
    Columns,
    OnlineStore,
    OnlineValue,
    Row,
    batch_rows,
    check_row,
)

__all__ = ["RedisOnlineStore"]

_STAMP = 40  # characters of event and created time in front of the payload

# ARGV[1]: the key prefix; ARGV[2]: records "<len>:<key><len>:<value>" (byte lengths).
# Keeps, for each key, the greater value by its first 40 characters. The records travel
# as one argument: packing two arguments per row costs the client more than this loop.
_UPSERT = """
local prefix, blob = ARGV[1], ARGV[2]
local pos, size, changed = 1, #blob, 0
while pos <= size do
  local colon = string.find(blob, ':', pos, true)
  local length = tonumber(string.sub(blob, pos, colon - 1))
  local key = prefix .. string.sub(blob, colon + 1, colon + length)
  pos = colon + length + 1
  colon = string.find(blob, ':', pos, true)
  length = tonumber(string.sub(blob, pos, colon - 1))
  local new = string.sub(blob, colon + 1, colon + length)
  pos = colon + length + 1
  local old = redis.call('GET', key)
  if (not old) or string.sub(old, 1, 40) < string.sub(new, 1, 40) then
    redis.call('SET', key, new)
    changed = changed + 1
  end
end
return changed
"""


# KEYS: the keys to read; the answer is one JSON array of their values, false where none
_MGET_JSON = "return cjson.encode(redis.call('MGET', unpack(KEYS)))"
#: the most keys read through the script at once (Lua's unpack stops near 8,000)
_SCRIPT_KEYS = 4_000
#: rows per Lua call of a write: the longest other clients wait (about 5 µs a row)
SCRIPT_ROWS = 2_000


def _record(key: str, event_us: int, created_us: int, payload: str) -> bytes:
    name, value = key.encode(), f"{event_us:020d}{created_us:020d}{payload}".encode()
    return b"%d:%s%d:%s" % (len(name), name, len(value), value)


def _send(writer: Any, sha: str, prefix: str, calls: list[bytes]) -> int:
    """One round trip: a pipeline (no transaction) of the upsert calls; the rows stored."""
    pipe = writer.pipeline(transaction=False)
    for blob in calls:
        pipe.evalsha(sha, 0, prefix, blob)
    return sum(int(n) for n in pipe.execute())


def _row_batches(rows: Iterable[Row]) -> Iterator[list[bytes]]:
    remaining = iter(rows)
    while chunk := list(islice(remaining, BATCH)):
        yield [_record(*check_row(row)) for row in chunk]


def _column_batches(batches: Iterable[Columns]) -> Iterator[list[bytes]]:
    for batch in batches:
        size = batch_rows(batch)
        for at in range(0, size, BATCH):
            part = (column[at : at + BATCH] for column in batch)
            yield [_record(*row) for row in zip(*part, strict=True)]


class RedisOnlineStore(OnlineStore):
    """Feature values in the Redis server at ``url`` (``redis://host:port/db``, optional
    ``?prefix=`` naming this project's keys, default ``ctloop``)."""

    #: a write streams: each batch is whole, not the write (see the module's notes)
    atomic = False

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = prefix or query.pop("prefix", ["ctloop"])[0]
        rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
        self.url = urlunsplit(parts._replace(query=rest))
        self._client: Any = None
        self._write_client: Any = None
        self._mget_json: Any = None

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
            # EVALSHA, loading the script again after a server restart
            self._mget_json = self._client.register_script(_MGET_JSON)
        return self._client

    def _writer(self) -> Any:
        if self._write_client is None:
            import redis

            self._write_client = redis.Redis.from_url(self.url, socket_timeout=None)
        return self._write_client

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
        """Stream ``rows`` in batches of :data:`~ctloop.store._online.BATCH`, one round
        trip each (see the module's notes: not all or nothing)."""
        return self._stream(view, _row_batches(rows))

    def write_columns(self, view: str, batches: Iterable[Columns]) -> int:
        """:meth:`write` of batches of columns, one round trip a batch (a batch longer
        than :data:`~ctloop.store._online.BATCH` is sent in parts)."""
        return self._stream(view, _column_batches(batches))

    def _stream(self, view: str, batches: Iterable[list[bytes]]) -> int:
        """Send each batch of records while the next is made; the rows stored."""
        import redis

        client = self._redis()
        prefix = f"{self.prefix}:{view}:"
        changed, sent = 0, 0
        pending: Future[int] | None = None
        try:
            sha = client.script_load(_UPSERT)
            writer = self._writer()
            # leaving the block waits for the batch in flight, also when the rows fail
            with ThreadPoolExecutor(1, thread_name_prefix="ctloop-redis-write") as pool:
                for records in batches:
                    calls = [
                        b"".join(records[i : i + SCRIPT_ROWS])
                        for i in range(0, len(records), SCRIPT_ROWS)
                    ]
                    if pending is not None:
                        changed += pending.result()
                    sent += len(records)
                    pending = pool.submit(_send, writer, sha, prefix, calls)
                if pending is not None:
                    changed += pending.result()
        except redis.RedisError as exc:
            kept = (
                "; rows sent before stay stored (each only where newer), so writing them "
                "again finishes the job"
                if sent
                else ""
            )
            if isinstance(exc, redis.ConnectionError):
                raise StoreUnavailableError(
                    f"the Redis online store at {self.url} cannot be reached ({exc}) while "
                    f"writing feature view {view!r}; start redis-server or fix "
                    f"CTLOOP_ONLINE_STORE_URL{kept}"
                ) from exc
            raise StoreError(
                f"the Redis online store failed while writing feature view {view!r}: {exc}{kept}"
            ) from exc
        return changed

    def read(self, keys: Mapping[str, Sequence[str]]) -> dict[str, list[OnlineValue | None]]:
        """One round trip for every key of every view."""
        client = self._redis()
        names = [self._key(view, k) for view, wanted in keys.items() for k in wanted]
        values: list[Any] = (
            self._call("reading features", lambda: self._fetch(client, names)) if names else []
        )
        out: dict[str, list[OnlineValue | None]] = {}
        at = 0
        for view, wanted in keys.items():
            chunk = values[at : at + len(wanted)]
            at += len(wanted)
            out[view] = [
                OnlineValue(int(v[:20]), v[_STAMP:] if isinstance(v, str) else v[_STAMP:].decode())
                if v
                else None
                for v in chunk
            ]
        return out

    def _fetch(self, client: Any, names: list[str]) -> list[Any]:
        """The stored values of ``names``: text, or bytes from a plain ``MGET``; ``None``
        or ``False`` where there is none."""
        if len(names) == 1 or len(names) > _SCRIPT_KEYS:
            return list(client.mget(names))
        import orjson

        values: list[Any] = orjson.loads(self._mget_json(keys=names))
        return values

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
        for client in (self._client, self._write_client):
            if client is not None:
                client.close()
        self._client = self._write_client = None
