"""Running the prediction server with uvicorn (httptools, uvloop), in one process or
several worker processes that each load the model once.

>>> serve(ServeConfig("flights@champion", store_url=url, artifact_url=art),
...       host="127.0.0.1", port=8080, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from uvicorn.supervisors import Multiprocess

from ctloop.errors import ServingError, UnsafeModelError
from ctloop.serve._config import ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ctloop.serve._pool import ModelPool

__all__ = [
    "CONFIG_ENV",
    "METRICS_FOLDER_ENV",
    "WORKER_APP",
    "WORKER_READY_TIMEOUT_S",
    "PortPerWorker",
    "Supervisor",
    "app_from_environment",
    "check_servable",
    "native_thread_limits",
    "open_pool",
    "serve",
    "shared_metrics",
    "uvicorn_options",
]

CONFIG_ENV = "CTLOOP_SERVE_CONFIG"
"""The environment variable that hands the config (JSON) to worker processes."""

METRICS_FOLDER_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where the workers keep their metrics (:data:`ctloop.serve._metrics.MULTIPROCESS_ENV`;
named here too, as it must be set or cleared before prometheus-client is imported)."""


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """The uvicorn settings ctloop serves with: uvloop, httptools, no access log."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "none",
        "access_log": False,
        "log_level": "info",
        "timeout_graceful_shutdown": 10,
    }


def serve(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    reuse_port: bool = True,
) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM). Binds ``host`` (loopback by default).

    A model that cannot be served (not registered, not a model, a pickle without trust)
    raises before uvicorn starts: one worker loads it here and serves what it loaded;
    several workers each load their own, so here it is only checked in the registry.

    Several workers run under uvicorn's supervisor (restarted when one dies, all
    replaced on SIGHUP), each with its native thread pools limited to its share of the
    cores (:func:`native_thread_limits`). With ``reuse_port`` (where the system has
    ``SO_REUSEPORT``) each worker listens on a socket of its own on the port and the
    kernel spreads new connections evenly over them (:class:`PortPerWorker`); else they
    all accept from one shared socket, where whichever worker wakes first takes the
    connections that arrive together."""
    import uvicorn

    if workers < 1:
        raise ServingError(f"--workers must be at least 1, not {workers}")
    for name, value in native_thread_limits(workers).items():  # read by every worker
        os.environ.setdefault(name, value)
    options = uvicorn_options(host, port)
    if workers == 1:
        # one process: its own registry, no files (popped before prometheus-client loads)
        os.environ.pop(METRICS_FOLDER_ENV, None)
        from ctloop.serve._app import create_app

        uvicorn.run(create_app(config, pool=open_pool(config)), **options)
        return
    check_servable(config)
    os.environ[CONFIG_ENV] = config.to_json()
    # a new worker loads its model before it is ready: on SIGHUP uvicorn waits this long
    # for it (its default of 5 s gives up on a model that takes longer, or a busy machine)
    options["timeout_worker_healthcheck"] = WORKER_READY_TIMEOUT_S
    uvicorn_config = uvicorn.Config(WORKER_APP, factory=True, workers=workers, **options)
    supervisor: Supervisor
    if reuse_port and hasattr(socket, "SO_REUSEPORT"):
        supervisor = PortPerWorker(uvicorn_config)
    else:
        supervisor = Supervisor(uvicorn_config, sockets=[uvicorn_config.bind_socket()])
    with shared_metrics(), contextlib.suppress(KeyboardInterrupt):
        supervisor.run()


@contextlib.contextmanager
def shared_metrics() -> Iterator[str]:
    """A fresh private folder for the workers' metric files (prometheus-client's
    multiprocess mode, :data:`METRICS_FOLDER_ENV`), set in the
    environment the workers start with, and removed with its files at exit.

    >>> with shared_metrics() as folder:  # doctest: +SKIP
    ...     Supervisor(config, sockets=[sock]).run()
    """
    before = os.environ.get(METRICS_FOLDER_ENV)
    with tempfile.TemporaryDirectory(prefix="ctloop-metrics-") as folder:
        os.environ[METRICS_FOLDER_ENV] = folder
        try:
            yield folder
        finally:
            if before is None:
                os.environ.pop(METRICS_FOLDER_ENV, None)
            else:
                os.environ[METRICS_FOLDER_ENV] = before


WORKER_READY_TIMEOUT_S = 60
"""How long a worker may take to load its model and answer the supervisor's health ping."""

WORKER_APP = "ctloop.serve._server:app_from_environment"
"""The app factory each worker process imports (it reads :data:`CONFIG_ENV`)."""


def _bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening), with ``SO_REUSEPORT``
    if asked: then other sockets of this user with it may bind the port too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServingError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what uses the port "
            "or choose another with --port"
        ) from exc
    sock.set_inheritable(True)
    return sock


def _first_socket(host: str, port: int) -> socket.socket:
    """The first worker's socket, once the port is known to be free: without the check,
    a second server started on the port by mistake would join the first one's sockets
    and take a share of its connections (``SO_REUSEPORT`` lets the same user do that)."""
    with _bound_socket(host, port, reuse_port=False) as probe:
        port = probe.getsockname()[1]  # port 0: the one the system chose
    return _bound_socket(host, port, reuse_port=True)


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor (:class:`uvicorn.supervisors.Multiprocess`) that, each
    time it checks its workers (every half second, and after a signal such as SIGHUP's
    restart), drops the live gauges of the workers that are gone from the shared metric
    files (:func:`~ctloop.serve._metrics.forget_dead_workers`), so ``/metrics`` counts
    what they answered and shows only the live ones' gauges.

    >>> Supervisor(config, sockets=[config.bind_socket()]).run()  # doctest: +SKIP
    """

    def keep_subprocess_alive(self) -> None:
        try:
            super().keep_subprocess_alive()
        finally:
            self._forget_dead_workers()

    def handle_signals(self) -> None:
        try:
            super().handle_signals()
        finally:
            self._forget_dead_workers()

    def _forget_dead_workers(self) -> None:
        from ctloop.serve._metrics import forget_dead_workers

        folder = os.environ.get(METRICS_FOLDER_ENV)
        if folder and os.path.isdir(folder):
            alive = {p.pid for p in self.processes if p.pid is not None and p.process.is_alive()}
            forget_dead_workers(folder, alive)


class PortPerWorker(Supervisor):
    """The worker :class:`Supervisor`, each worker started with a listening socket of its
    own on the port (``SO_REUSEPORT``).

    On one shared socket the worker that wakes first accepts every connection that is
    waiting, so a client opening 32 keep-alive connections at once gave one of two
    workers 22 to 28 of them; with a socket per worker the kernel hashes each new
    connection to one listening socket (even in the mean), and no proxy sits in front.
    uvicorn hands a new worker (at start, after a crash, on SIGHUP) ``self.sockets``: here
    a socket bound for it alone, whose copy in this process is closed once the worker has
    started, so that the socket closes with its worker (a connection the kernel had
    hashed to a worker that dies is reset, as a connection in flight to it would be).

    >>> PortPerWorker(uvicorn.Config(WORKER_APP, factory=True, workers=2)).run()  # doctest: +SKIP
    """

    def __init__(self, config: Any) -> None:
        self._handed: list[socket.socket] = []
        self._first: socket.socket | None = _first_socket(config.host, config.port)
        self._port = int(self._first.getsockname()[1])
        super().__init__(config, sockets=[])
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on http://%s:%d (Press CTRL+C to quit; a socket per worker)",
            config.host,
            self._port,
        )

    @property
    def sockets(self) -> list[socket.socket]:
        """A socket for the next worker to start (the first one bound at start)."""
        sock, self._first = self._first, None
        if sock is None:
            sock = _bound_socket(self.config.host, self._port, reuse_port=True)
        self._handed.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, value: list[socket.socket]) -> None:
        pass  # the base's shared socket: each worker gets its own instead

    def _close_handed(self) -> None:
        # a started worker holds its own copy of its socket (passed at spawn)
        for sock in self._handed:
            sock.close()
        self._handed.clear()

    def init_processes(self) -> None:
        super().init_processes()
        self._close_handed()

    def restart_all(self) -> None:
        try:
            super().restart_all()
        finally:
            self._close_handed()

    def keep_subprocess_alive(self) -> None:
        try:
            super().keep_subprocess_alive()
        finally:
            self._close_handed()


def native_thread_limits(workers: int, cores: int | None = None) -> dict[str, str]:
    """The thread counts of the native pools (OpenMP, OpenBLAS, MKL, ...) each of
    ``workers`` processes starts with, so that together they use no more than ``cores``
    (default: the CPUs this process may run on, ``os.sched_getaffinity``): each worker's
    share, at least 1. OpenMP gets one thread whatever the share: requests are already
    predicted on several threads of each worker, and OpenMP's spinning threads on top of
    them make one-row calls many times slower on busy cores. A variable already set is
    the user's choice and kept (:func:`serve` only fills in the missing ones).

    >>> native_thread_limits(2, cores=8)["OPENBLAS_NUM_THREADS"]
    '4'
    >>> native_thread_limits(4, cores=2)["MKL_NUM_THREADS"], native_thread_limits(1, 8)["OMP_NUM_THREADS"]
    ('1', '1')
    """
    from ctloop.workers import thread_variables

    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return thread_variables(max(1, (cores or 1) // workers)) | {"OMP_NUM_THREADS": "1"}


def open_pool(config: ServeConfig) -> ModelPool:
    """The model pool ``config`` serves, with its model loaded.

    >>> config = ServeConfig("flights@champion", store_url=url, artifact_url=art)  # doctest: +SKIP
    >>> open_pool(config).ready  # doctest: +SKIP
    True
    """
    from ctloop.serve._pool import ModelPool

    pool = ModelPool(
        config.reference,
        workspace=config.open_workspace(),
        cache_dir=config.cache_path(),
        deployment=config.deployment,
    )
    try:
        pool.refresh()
    except UnsafeModelError as exc:
        raise _unsafe(config.reference) from exc
    return pool


def check_servable(config: ServeConfig) -> None:
    """Raise unless ``config.reference`` names a registered model that loads without
    pickle (or with ``CTLOOP_TRUST_PICKLE=1``), reading the registry only.

    >>> check_servable(ServeConfig("nosuch", store_url=url, artifact_url=art))  # doctest: +SKIP
    Traceback (most recent call last):
    ctloop.errors.ModelNotFoundError: model 'nosuch' is not registered; ...
    """
    workspace = config.open_workspace()
    found = workspace.registry.resolve(config.reference)
    record = workspace.metadata.get_artifact(found.artifact_id)
    if record.type != "Model":
        raise ServingError(
            f"{found.reference} is a {record.type} artifact, not a Model; register the output "
            "of a step that returns ctloop.artifacts.model.Model"
        )
    trusted = os.environ.get("CTLOOP_TRUST_PICKLE") == "1"
    if record.properties.get("flavor") == "pickle" and not trusted:
        raise _unsafe(config.reference)


def _unsafe(reference: str) -> UnsafeModelError:
    return UnsafeModelError(
        f"{reference} is stored as a pickle, and loading a pickle runs arbitrary code; "
        "start the server with CTLOOP_TRUST_PICKLE=1 only if you trust everyone who can "
        "write to this store, or register the model in a safe flavor"
    )


def app_from_environment() -> FastAPI:
    """The app a worker process serves, built from :data:`CONFIG_ENV`."""
    from ctloop.serve._app import create_app

    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise ServingError(
            f"{CONFIG_ENV} is not set; start worker processes with `ctloop serve --workers N`"
        )
    return create_app(ServeConfig.from_json(text))
