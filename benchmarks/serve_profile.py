"""Where one lone prediction request's time goes in ``ctloop serve``, in process.

    python benchmarks/serve_profile.py                 # 2,000 requests
    python benchmarks/serve_profile.py --requests 500 --top 25

The flights model of ``benchmarks/serving.py`` is served by the real ASGI app
(``ctloop.serve._app.create_app``: routing, body reading, parsing, signature checks,
batching, metrics) and called one request at a time (concurrency 1) with ASGI messages
directly, so no HTTP server or socket is in the measured path. Prints one JSON line with the median wall time (``wall_p50_ms``) and process CPU time
(``cpu_p50_ms``, which other programs on a busy machine do not inflate) of each layer,
the layers called in turn for ``--requests`` rounds:

- ``app``: one ``POST /invocations`` through the app, as served (a lone request of a
  quick model is predicted on the event loop);
- ``app_thread_hop``: the same with the prediction handed to a worker thread
  (``MicroBatcher(inline_below_ms=0)``);
- ``core``: ``PredictionService.predict`` of the parsed request (no ASGI, no routing);
- ``model_predict``: ``Model.predict`` of one record (``prepare`` + ``estimator``);
- ``prepare``: the signature check and the one-row frame;
- ``estimator``: ``Model.predict_frame`` of a prepared one-row frame.

``outside_model_predict_ms`` is ``app`` minus ``model_predict``: what serving adds.

``--server`` measures a real server instead: ``ctloop serve flights@champion`` (native)
and ``flights@onnx`` (the ONNX runtime), each started as its own process
(``--no-log-predictions`` unless ``--log``), sent ``--requests`` one-row
``POST /invocations`` requests over keep-alive connections at each ``--concurrency``
after 300 uncounted ones. The server process's CPU time (user + system, all its threads,
from ``/proc/PID/stat``) over those requests, divided by their number, is
``server_cpu_ms_per_request``; other programs on a busy machine do not inflate it, as
they do wall-clock figures. ``model_predict_cpu_ms`` is this process's CPU time of one
``Model.predict`` of one row (the same model, no server); ``model_call_cpu_ms`` that of
the call the server makes for a lone plain row (the compiled form's
``Model.predict_plain_records``, which builds no DataFrame, or else ``Model.predict``),
and ``outside_model_cpu_ms`` the server's time minus it: what serving costs per
request (at concurrency above 1 micro-batching shares one model call among several
requests, so it can be below zero). One JSON line per runtime and concurrency::

    python benchmarks/serve_profile.py --server --requests 3000 --concurrency 1,16

``--workers N`` serves with N worker processes (each started before the requests are
sent); the server's CPU time is then that of the supervisor and all its child processes
together (``/proc/PID/stat`` of each), so it includes what the workers share, such as
``/metrics``'s files of every worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as benchmarks/serving.py serves

from serving import (
    ROUTE,
    _stop,
    _wait_ready,
    build_model,
    ctloop_command,
    ctloop_env,
    free_port,
    register_ctloop,
    request_bodies,
)

from ctloop.serve._protocols import parse_mlflow


async def call(app: Any, body: bytes) -> bytes:
    """One ``POST /invocations`` through ``app``; the response body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ROUTE,
        "raw_path": ROUTE.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    sent: list[bytes] = []
    status = 0
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.sleep(3600)
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"status {status}: {b''.join(sent).decode(errors='replace')}")
    return b"".join(sent)


async def measure_app(
    store: dict[str, Any], records: list[dict[str, Any]], bodies: list[bytes], args: Any
) -> dict[str, Any]:
    from ctloop.serve._app import create_app
    from ctloop.serve._config import ServeConfig

    config = ServeConfig(
        f"flights@{args.alias}",
        store_url=store["store_url"],
        artifact_url=store["artifact_url"],
        cache_dir=str(Path(store["artifact_url"]).parent / "cache"),
        log_predictions=args.log,
        poll_seconds=0,
    )
    app = create_app(config)
    async with app.router.lifespan_context(app):
        state = app.state.serving
        batcher, service = state.service.batcher, state.service
        model = state.pool.routing.primary.model
        inline = batcher.inline_below_s
        for body in bodies[:200]:
            await call(app, body)
        frames = [model.prepare([r]) for r in records[:50]]

        def row(i: int) -> dict[str, Any]:
            return records[i % len(records)]

        def body(i: int) -> bytes:
            return bodies[i % len(bodies)]

        layers: dict[str, Callable[[int], Any]] = {
            "app": lambda i: call(app, body(i)),
            "app_thread_hop": lambda i: call(app, body(i)),
            "core": lambda i: service.predict(parse_mlflow(body(i), "application/json"), "r"),
            "model_predict": lambda i: model.predict([row(i)]),
            "prepare": lambda i: model.prepare([row(i)]),
            "estimator": lambda i: model.predict_frame(frames[i % len(frames)]),
        }
        wall: dict[str, list[float]] = {k: [] for k in layers}
        cpu: dict[str, list[float]] = {k: [] for k in layers}
        for i in range(args.requests):  # layers alternate, so load changes hit each alike
            for name, layer in layers.items():
                batcher.inline_below_s = 0.0 if name == "app_thread_hop" else inline
                start, start_cpu = time.perf_counter(), time.process_time()
                result = layer(i)
                if inspect.isawaitable(result):
                    await result
                cpu[name].append(time.process_time() - start_cpu)
                wall[name].append(time.perf_counter() - start)
        batcher.inline_below_s = inline
        if args.cprofile:
            await _profile_app(app, bodies, args)
    return {"wall_p50_ms": _medians(wall), "cpu_p50_ms": _medians(cpu)}


async def _profile_app(app: Any, bodies: list[bytes], args: Any) -> None:
    """``--cprofile``: the ``app`` layer under cProfile, its top functions on stderr."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(args.requests):
        await call(app, bodies[i % len(bodies)])
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats(args.cprofile).print_stats(args.top)


def _medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(statistics.median(v) * 1000, 3) for k, v in times.items()}


# -- a real server's CPU time per request (--server) -------------------------------------


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread, living or ended) of process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of process ``pid`` and every living process below it (workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {pid}, True
    while grew:
        below = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    total = 0.0
    for member in tree:
        with contextlib.suppress(OSError):  # ended meanwhile
            total += process_cpu_s(member)
    return total


def send_all(port: int, bodies: list[bytes], requests: int, concurrency: int) -> None:
    """``requests`` ``POST /invocations``, ``concurrency`` keep-alive connections at once."""
    import http.client
    import threading

    counter = iter(range(requests))
    lock = threading.Lock()
    failures: list[str] = []
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                connection.request("POST", ROUTE, bodies[i % len(bodies)], headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    failures.append(f"{response.status}: {answer[:200]!r}")
                    return
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"the server refused a request: {failures[0]}")


def predict_cpu_ms(predict: Callable[[list[Any]], Any], records: list[Any], calls: int) -> float:
    """This process's CPU milliseconds of one ``predict`` of one row (a mean)."""
    for row in records[:50]:
        predict([row])
    start = time.process_time()
    for i in range(calls):
        predict([records[i % len(records)]])
    return (time.process_time() - start) / calls * 1000


def model_call(model: Any) -> Callable[[list[Any]], Any]:
    """What the server calls for a lone plain row: the compiled form's record path,
    when it takes the row, else ``Model.predict``."""
    if model.predict_plain_records([_probe_row(model)]) is not None:
        return model.predict_plain_records  # type: ignore[no-any-return]
    return model.predict  # type: ignore[no-any-return]


def _probe_row(model: Any) -> dict[str, Any]:
    values = {"integer": 1, "float": 1.0, "boolean": False, "string": "a", "category": "a"}
    return {c.name: values.get(c.type) for c in model.signature.inputs}


def log_settled(port: int, sent: int = 0) -> int:
    """How many logged rows wait to be written (accepted, not yet written, kept or
    dropped), from the server's ``/metrics``; at least those of the ``sent`` requests
    not yet counted as accepted (several workers publish their counts every 0.5 s)."""
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    pattern = r'^ctloop_prediction_log_rows_total{outcome="([a-z_]+)"} ([0-9.e+]+)$'
    rows = {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}
    settled = sum(rows.get(k, 0.0) for k in ("written", "dead_letter", "dropped"))
    accepted = rows.get("accepted", 0.0)
    return int(max(accepted - settled, sent - accepted))


def wait_for_log(port: int, sent: int = 0, seconds: float = 300) -> None:
    """Wait until the server has written every row it logged (``sent`` rows at least)."""
    deadline = time.monotonic() + seconds
    while log_settled(port, sent) > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not write its prediction log in {seconds} s")
        time.sleep(0.05)


def measure_servers(
    built: dict[str, Any], store: dict[str, Any], tmp: Path, bodies: list[bytes], args: Any
) -> list[dict[str, Any]]:
    """One figure per runtime and concurrency (see the module)."""
    import subprocess

    from ctloop.artifacts.model import Model
    from ctloop.artifacts.model._onnx import compile_onnx

    runtimes = {"native": "champion"}
    models = {"native": Model.from_estimator(built["estimator"], built["x_train"])}
    if store["onnx"]["accepted"]:
        compiled = Model.from_estimator(built["estimator"], built["x_train"])
        compile_onnx(compiled, built["x_valid"], tolerance=1e-4)
        runtimes["onnx"], models["onnx"] = "onnx", compiled
    lines = []
    for runtime, alias in runtimes.items():
        model, calls = models[runtime], min(args.requests, 2000)
        in_process = predict_cpu_ms(model.predict, built["records"], calls)
        called = predict_cpu_ms(model_call(model), built["records"], calls)
        port = free_port()
        cmd = ctloop_command(alias, port, tmp) + ["--workers", str(args.workers)]
        if args.log:
            cmd.remove("--no-log-predictions")
        env = ctloop_env(store, tmp) | {"OMP_NUM_THREADS": "1"}
        if args.source:
            env["PYTHONPATH"] = str(Path(args.source).resolve() / "src")
        log_path = tmp / f"server-{runtime}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                _wait_ready(runtime, f"http://127.0.0.1:{port}/ping", proc, log_path)
                _wait_for_workers(args.workers, log_path)
                sent = 0
                for concurrency in args.concurrency:
                    send_all(port, bodies, 300, concurrency)
                    sent += 300
                    if args.log:
                        wait_for_log(port, sent)
                    load = os.getloadavg()[0]
                    start_cpu, start = tree_cpu_s(proc.pid), time.perf_counter()
                    send_all(port, bodies, args.requests, concurrency)
                    seconds = time.perf_counter() - start
                    sent += args.requests
                    if args.log:
                        wait_for_log(port, sent)
                    cpu_ms = (tree_cpu_s(proc.pid) - start_cpu) / args.requests * 1000
                    lines.append(
                        {
                            "benchmark": "serve_cpu",
                            "runtime": runtime,
                            "concurrency": concurrency,
                            "workers": args.workers,
                            "requests": args.requests,
                            "log_predictions": args.log,
                            "source": args.source or "this checkout",
                            "server_cpu_ms_per_request": round(cpu_ms, 3),
                            "model_predict_cpu_ms": round(in_process, 3),
                            "model_call_cpu_ms": round(called, 3),
                            "outside_model_cpu_ms": round(cpu_ms - called, 3),
                            "wall_req_per_s": round(args.requests / seconds, 1),
                            "load1": round(load, 2),
                        }
                    )
            finally:
                _stop(proc)
    return lines


def _wait_for_workers(workers: int, log_path: Path, seconds: float = 300) -> None:
    """Wait until each of ``workers`` worker processes has started (its uvicorn line)."""
    deadline = time.monotonic() + seconds
    while log_path.read_text().count("Application startup complete") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workers} workers did not start in {seconds} s")
        time.sleep(0.2)


def measure_logger(built: dict[str, Any], tmp: Path, args: Any) -> dict[str, Any]:
    """``--logger``: CPU milliseconds per one-row request of the prediction log (see the
    module), for plain records and for prepared frames."""
    import numpy as np

    from ctloop.artifacts.model import Model
    from ctloop.serve._prediction_log import FrameRows, PendingRows, PredictionLogger
    from ctloop.store.workspace import Workspace

    model = Model.from_estimator(built["estimator"], built["x_train"])
    records = built["records"]
    frames = [model.prepare([row]) for row in records]
    batch = model.prepare(records[:16])
    parts = FrameRows.split(batch, [1] * 16)
    prediction = np.array([0.5])
    inputs: dict[str, Callable[[int], Any]] = {
        "records": lambda i: PendingRows(model.prepare, [records[i % len(records)]]),
        "frame": lambda i: frames[i % len(frames)],
        "batch_part": lambda i: parts[i % len(parts)],
    }
    result: dict[str, Any] = {}
    for kind, make in inputs.items():
        workspace = Workspace.open(
            f"sqlite:///{tmp / f'log-{kind}.db'}", artifacts=str(tmp / f"log-{kind}")
        )
        logger = PredictionLogger(workspace, "flights", flush_rows=1000, flush_seconds=3600)
        made = [make(i) for i in range(args.requests)]
        start, start_thread = time.process_time(), time.thread_time()
        for i, frame in enumerate(made):
            logger.log(1, "flights", [f"r{i}"], frame, prediction, time.time(), latency_ms=1.0)
        logging = time.thread_time() - start_thread  # this thread's: the requests' share
        logger.flush()
        total = time.process_time() - start - (time.thread_time() - start_thread - logging)
        logger.close()
        result[kind] = {
            "log_cpu_ms": round(logging / args.requests * 1000, 4),
            "writer_cpu_ms": round((total - logging) / args.requests * 1000, 4),
            "rows_written": logger.logged_rows,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--alias", default="champion", help="champion (native) or onnx")
    parser.add_argument("--log", action="store_true", help="log predictions (off by default)")
    parser.add_argument(
        "--cprofile",
        choices=("tottime", "cumulative"),
        help="also profile the app layer, its --top functions by this order on stderr",
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--server", action="store_true", help="CPU time per request of real servers"
    )
    parser.add_argument(
        "--logger", action="store_true", help="CPU time per request of the prediction log"
    )
    parser.add_argument("--source", help="with --server: serve the ctloop of DIR/src")
    parser.add_argument(
        "--workers", type=int, default=1, help="with --server: worker processes (--workers)"
    )
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[1, 16],
        help="with --server: connections at once, comma-separated",
    )
    args = parser.parse_args()
    if args.source and not (Path(args.source) / "src" / "ctloop").is_dir():
        parser.error(f"--source {args.source}: no src/ctloop there; pass a ctloop checkout")
    built = build_model(1000)
    bodies = request_bodies(built["records"])
    if args.logger:
        with tempfile.TemporaryDirectory(prefix="ctloop-log-cpu-") as name:
            logged = measure_logger(built, Path(name), args)
        line = {"benchmark": "prediction_log_cpu", "requests": args.requests, **logged}
        print(json.dumps(line | {"load1": round(os.getloadavg()[0], 2)}))
        return
    if args.server:
        with tempfile.TemporaryDirectory(prefix="ctloop-serve-cpu-") as name:
            store = register_ctloop(built, Path(name))
            for line in measure_servers(built, store, Path(name), bodies, args):
                print(json.dumps(line), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="ctloop-serve-profile-") as name:
        store = register_ctloop(built, Path(name))
        app = asyncio.run(measure_app(store, built["records"], bodies, args))
    print(
        json.dumps(
            {
                "benchmark": "serve_profile",
                "alias": args.alias,
                "requests": args.requests,
                "load1": round(os.getloadavg()[0], 2),
                **app,
                "outside_model_predict_ms": {
                    kind: round(app[kind]["app"] - app[kind]["model_predict"], 3)
                    for kind in ("wall_p50_ms", "cpu_p50_ms")
                },
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
