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
"""

from __future__ import annotations

import argparse
import asyncio
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

from serving import ROUTE, build_model, register_ctloop, request_bodies

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
    return {"wall_p50_ms": _medians(wall), "cpu_p50_ms": _medians(cpu)}


def _medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(statistics.median(v) * 1000, 3) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--alias", default="champion", help="champion (native) or onnx")
    parser.add_argument("--log", action="store_true", help="log predictions (off by default)")
    args = parser.parse_args()
    built = build_model(1000)
    bodies = request_bodies(built["records"])
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
