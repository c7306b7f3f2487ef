"""A workspace on a ctloop server: every store talks HTTP to ``ctloop server``.

Chosen by ``CTLOOP_SERVER`` (with ``CTLOOP_TOKEN``) or ``server:`` in ``ctloop.yaml``,
so a pipeline run anywhere records into the team's server and every CLI command works
against it::

    ws = Workspace.remote("https://ctloop.example.internal", token="ctl_…")
    ws.metadata.list_runs(limit=5)

Each store is one class, built from its interface by :func:`remote_store`: every method
of the interface is forwarded as ``POST /api/v1/workspace/{store}/{method}`` (see
:mod:`ctloop.server._workspace_api`), so the remote stores pass the same contract suites
as the SQL and in-memory ones. A store's error comes back as the same class of
:mod:`ctloop.errors` with the same message; a server that cannot be reached is a
:class:`~ctloop.errors.StoreUnavailableError`, a refused token an
:class:`AccessDeniedError`, both naming the server. Blob bytes stream in chunks both
ways.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ctloop.errors import (
    AccessDeniedError,
    ConfigError,
    CtloopError,
    IntegrityError,
    NotFoundError,
    StoreUnavailableError,
)
from ctloop.store._remote_codec import decode, encode
from ctloop.store._remote_protocol import (
    STORES,
    forwarded_methods,
    interface_of,
    private_hooks,
)

if TYPE_CHECKING:
    import httpx

    from ctloop.store.workspace import Workspace

__all__ = ["RemoteConnection", "open_remote_workspace", "remote_store"]

#: where the workspace protocol lives on the server
PROTOCOL_PATH = "/api/v1/workspace"
_CHUNK = 1 << 20
_BUILTIN_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "KeyError": KeyError,
    "LookupError": LookupError,
}


class RemoteConnection:
    """One HTTP connection pool to a ctloop server, shared by a workspace's stores.

    >>> RemoteConnection("http://127.0.0.1:8000/").url
    'http://127.0.0.1:8000'
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """The pooled client (made on first use, so opening a workspace costs nothing)."""
        with self._lock:
            if self._client is None:
                import httpx

                headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                self._client = httpx.Client(
                    base_url=self.url + PROTOCOL_PATH,
                    headers=headers,
                    timeout=httpx.Timeout(self.timeout, connect=10.0),
                )
            return self._client

    def call(self, store: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call ``store.method(*args, **kwargs)`` on the server and return its result."""
        body = {"args": encode(list(args)), "kwargs": encode(kwargs)}
        response = self._send("POST", f"/{store}/{method}", f"{store}.{method}", json=body)
        return decode(response.json()["result"])

    def upload(self, content: bytes | Iterator[bytes]) -> tuple[str, int]:
        """Stream ``content`` (bytes, or chunks of them) into the server's artifact store;
        returns ``(sha256 digest, size)``."""
        response = self._send("PUT", "/artifacts/blobs", "storing a blob", content=content)
        answer = response.json()
        return str(answer["digest"]), int(answer["size"])

    def download(self, digest: str, sink: BinaryIO) -> None:
        """Stream the blob ``digest`` into ``sink`` chunk by chunk, verifying its sha256
        (an :class:`IntegrityError` when the bytes do not match)."""
        client = self.client
        what = f"downloading blob {digest}"
        try:
            with client.stream("GET", f"/artifacts/blobs/{digest}") as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for(response, what)
                sha = hashlib.sha256()
                for chunk in response.iter_bytes(_CHUNK):
                    sha.update(chunk)
                    sink.write(chunk)
        except _transport_errors() as exc:
            raise self._unreachable(what, exc) from exc
        if sha.hexdigest() != digest:
            raise IntegrityError(
                f"blob {digest} from {self.url} is corrupt: its bytes hash to {sha.hexdigest()}"
            )

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _send(self, verb: str, path: str, what: str, **request: Any) -> httpx.Response:
        try:
            response = self.client.request(verb, path, **request)
        except _transport_errors() as exc:
            raise self._unreachable(what, exc) from exc
        if response.status_code >= 400:
            self._raise_for(response, what)
        return response

    def _unreachable(self, what: str, exc: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the ctloop server at {self.url} cannot be reached ({what}: "
            f"{type(exc).__name__}: {exc}); check CTLOOP_SERVER or 'server:' in ctloop.yaml "
            "and that `ctloop server` is running there"
        )

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:300]}
        message = str(body.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 401:
            raise AccessDeniedError(f"the ctloop server at {self.url} refused the token: {message}")
        if response.status_code == 403:
            raise AccessDeniedError(f"the ctloop server at {self.url} refused {what}: {message}")
        raise _error_class(str(body.get("type", "")), response.status_code)(message)


def _error_class(name: str, status: int) -> type[Exception]:
    """The class of :mod:`ctloop.errors` (or a builtin) named ``name``; else a family."""
    import ctloop.errors

    found = getattr(ctloop.errors, name, None)
    if isinstance(found, type) and issubclass(found, CtloopError):
        return found
    if name in _BUILTIN_ERRORS:
        return _BUILTIN_ERRORS[name]
    if status >= 500:
        return StoreUnavailableError
    return CtloopError


def _transport_errors() -> tuple[type[Exception], ...]:
    import httpx

    return (httpx.TransportError,)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk


# -- the stores ---------------------------------------------------------------------------
class _Forwarder:
    """The part every remote store shares: where it forwards to."""

    _store: str

    _store_url: str | None = None

    def __init__(self, connection: RemoteConnection) -> None:
        self._connection = connection
        self.url = connection.url

    def close(self) -> None:
        """Nothing to release per store: the workspace closes the connection."""


def _forward(store: str, method: str) -> Callable[..., Any]:
    def forwarded(self: _Forwarder, *args: Any, **kwargs: Any) -> Any:
        return self._connection.call(store, method, args, kwargs)

    original = getattr(interface_of(store), method, None)  # None: one of the EXTRAS
    forwarded.__name__ = method
    forwarded.__doc__ = getattr(original, "__doc__", None)
    return forwarded


def _stays_home(store: str, method: str) -> Callable[..., Any]:
    def hook(self: _Forwarder, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{store}.{method} is a step of a public method, which the server runs whole"
        )

    hook.__name__ = method
    return hook


class _RemoteArtifacts(_Forwarder):
    """Blob bytes stream through the server in chunks instead of travelling as JSON."""

    @property
    def url(self) -> str:
        """The server's artifact store (``blob_uri`` names blobs where they really are)."""
        if self._store_url is None:
            self._store_url = str(self._connection.call("artifacts", "store_url", (), {}))
        return self._store_url

    @url.setter
    def url(self, value: str) -> None:
        self._store_url = None  # the connection's address; the store's is asked for

    def put_file(self, path: Path) -> tuple[str, int]:
        """Stream the file's bytes to the server; returns ``(sha256 digest, size)``."""
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"cannot store {path}: no such file")
        return self._connection.upload(_chunks(path))

    def put_bytes(self, data: bytes) -> str:
        """Send the bytes to the server as one body; returns their sha256 digest."""
        return self._connection.upload(bytes(data))[0]

    def get_bytes(self, digest: str) -> bytes:
        """The blob's bytes, streamed from the server and verified."""
        from ctloop.store._fs_artifacts import check_digest

        sink = io.BytesIO()
        self._connection.download(check_digest(digest), sink)
        return sink.getvalue()

    def local_path(self, digest: str, cache_dir: Path) -> Path:
        """A verified, read-only copy in ``cache_dir/<aa>/<digest>``, downloaded once."""
        from ctloop.store._fs_artifacts import cached_copy

        def download(tmp: Path) -> None:
            with open(tmp, "wb") as sink:
                self._connection.download(digest, sink)

        return cached_copy(digest, cache_dir, download)


_CLASSES: dict[str, type] = {}


def remote_store(store: str, connection: RemoteConnection) -> Any:
    """The store ``store`` of the workspace at ``connection`` (an instance of its
    interface: ``remote_store("metadata", c)`` is a ``MetadataStore``)."""
    if store not in _CLASSES:
        interface = interface_of(store)
        base: type = _RemoteArtifacts if store == "artifacts" else _Forwarder
        methods = {
            name: _forward(store, name)
            for name in forwarded_methods(store)
            if name not in vars(base)
        }
        methods.update({name: _stays_home(store, name) for name in private_hooks(store)})
        name = f"Remote{interface.__name__}"
        _CLASSES[store] = type(name, (base, interface), {"_store": store, **methods})
        _CLASSES[store].__module__ = __name__
    return _CLASSES[store](connection)


def open_remote_workspace(url: str, token: str | None = None) -> Workspace:
    """The workspace served by the ctloop server at ``url``, with the API key ``token``."""
    from ctloop.store.workspace import Workspace

    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"server URL {url!r} must start with http:// or https:// "
            "(CTLOOP_SERVER or 'server:' in ctloop.yaml)"
        )
    connection = RemoteConnection(url, token)
    stores = {name: remote_store(name, connection) for name in STORES}
    return Workspace(
        **stores,
        store_url=connection.url,
        artifact_url=connection.url,
        _connection=connection,
    )
