"""Online serving: one model served by ctloop, by ``mlflow models serve`` and by a bare
Starlette app, under the same load. Prints one JSON line::

    python benchmarks/serving.py                          # 10 s per test, 2 rounds
    python benchmarks/serving.py --duration 5 --rounds 3

The model is the flights example's ``HistGradientBoostingClassifier`` pipeline
(``examples/flights/pipeline.py``: ``fit_model``, ``features``) fitted on January and
February 2013; the request bodies are 1,000 distinct March flights (rows with no missing
value), one row per request, sent round-robin.

Servers (each one worker process on 127.0.0.1, all started before the first test):

- ``ctloop``: ``ctloop serve flights@champion --no-log-predictions`` (defaults otherwise:
  batching on, at most 32 rows, 2 ms wait), the model stored in a temporary store.
- ``ctloop_onnx``: the same with the model compiled to ONNX (``compile_onnx``, tolerance
  1e-4 on 2,000 March rows) as ``flights@onnx``; left out when compilation is refused.
- ``mlflow``: ``mlflow models serve --env-manager local -w 1`` from ``.bench/mlflow-venv``
  (installed on first use). The same fitted pipeline is pickled here and saved there with
  ``mlflow.sklearn.save_model(..., pyfunc_predict_fn="predict_proba")`` by
  ``benchmarks/mlflow_serve_model.py``, which refuses a different scikit-learn version.
- ``starlette_bare``: a Starlette app (uvicorn, uvloop, httptools) that parses the JSON,
  builds a one-row DataFrame and calls ``predict_proba``: the per-request limit of a
  Python server that calls the model once per request.

Every server runs with ``OMP_NUM_THREADS=1`` (``--omp-threads``): scikit-learn's tree
predictions use OpenMP, whose spinning threads make a one-row prediction ~10x slower
on a machine whose cores are busy; one thread suits one-row requests, and all servers
get the same setting.

Every server gets the same bytes on the same route, ``POST /invocations`` with
``{"dataframe_records": [row]}`` (MLflow's protocol, which ctloop also serves). The load
generator is ``ctloop.serve._loadtest`` (closed loop, one keep-alive session) in this
process, at concurrency 1 and 32, ``--duration`` seconds after ``--warmup`` seconds.
Tests alternate between servers (all servers at concurrency 1, then at 32, and again for
each round); per server and concurrency the round with the highest requests/s is kept,
and every round is reported under ``rounds``. The 1-minute load average is recorded
before each test: on a busy machine compare ratios, not absolute figures.

``in_process_p50_ms`` is the median of ``Model.predict`` on one row in this process (no
HTTP), native and ONNX, measured before the servers start, for reference.

``--with-peers`` adds BentoML 1.4.40 and MLServer 1.7.1 (``benchmarks/serving_peers.py``:
each in its own ``.bench/`` venv, its own protocol, adaptive batching on and off; MLServer
off means inference in the server process, ``parallel_workers: 0``) and
``ctloop serve --workers 2`` twice: ``ctloop_workers2`` (the default, a listening socket
per worker, ``SO_REUSEPORT``) and ``ctloop_workers2_shared_socket`` (``--shared-socket``:
both workers accept from one socket); no proxy in front of either. Their tests also
report ``worker_cpu_split``: each worker's CPU seconds during the test and the busiest
one's share (0.5 is an even split). Then ``ratios`` also divide ctloop's c=32 figures by
the better batched peer's and two workers' requests/s by one's, and ``goals`` check:
≥ 5× that peer's requests/s at ≤ ⅓ of its p99; c=1 p50 at most 1 ms above the
in-process ``Model.predict`` and not above MLServer in-process; ONNX ≥ 5,000 requests/s
at c=32; two workers ≥ 1.8× one, each with ``missed_by``.

``wrk`` (with ``--with-peers``, unless ``--no-wrk``) cross-checks the headline servers,
ctloop native, ctloop ONNX and the better batched peer, at each concurrency with Debian's
``wrk`` (one thread, ``benchmarks/wrk_post.lua`` posting the same bodies round-robin) and
then the Python generator, on the same server (``benchmarks/serving_wrk.py``). Both
generators run pinned with ``taskset`` to the first CPU and the server (every thread of
every process of its group) to the second. On a 2-core machine that is a different
setting from the rounds above: pinned, the server has **one** core and the generator the
other, so pinned figures are lower for a server whose work spreads over both cores
(ctloop's batching thread beside its event loop, a peer's inference process), and they
compare the two generators with each other, not with the rounds. wrk answering clearly
more requests/s than the Python generator on the same pinned server would mean the
Python generator is the bottleneck (``wrk_qps_over_python``).

``ratios`` divide ctloop's figures by MLflow's at concurrency 32 (``qps`` above 1 and
``p99`` below 1 favour ctloop). ``goals`` checks: ≥ 10× MLflow's requests/s and ≤ 1/5 of
its p99 at concurrency 32, and p50 under 5 ms at concurrency 1 with the compiled runtime.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import pickle
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import serving_peers
import serving_wrk
from peers import ROOT, clean_env, run_child
from tracking import ensure_mlflow_venv

FLIGHTS = ROOT / "examples" / "flights"
DATA = FLIGHTS / "data" / "flights.parquet"
MLFLOW_SCRIPT = Path(__file__).resolve().parent / "mlflow_serve_model.py"
ROUTE = "/invocations"
VALIDATION_ROWS = 2_000


@dataclass
class Server:
    """How to start one server and what to send it."""

    cmd: list[str]
    env: dict[str, str]
    port: int
    bodies: list[bytes]
    route: str = ROUTE
    ping: str = "/ping"
    cwd: Path | None = None
    peer: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# --- the model and the request bodies --------------------------------------------------


def _flights_module() -> ModuleType:
    if not DATA.exists():
        run_child([sys.executable, str(FLIGHTS / "prepare_data.py")], None, ROOT)
    spec = importlib.util.spec_from_file_location("flights_pipeline", FLIGHTS / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_model(rows: int) -> dict[str, Any]:
    """The fitted pipeline (Jan-Feb), its training inputs, validation inputs and
    ``rows`` request rows (distinct March flights with no missing value)."""
    import pandas as pd

    flights = _flights_module()
    table = pd.read_parquet(DATA)
    month = pd.to_datetime(table["date"]).dt.month
    train = table[month <= 2]
    x_train, _ = flights.features(train)
    x_march, _ = flights.features(table[month == 3])
    complete = x_march.dropna().drop_duplicates()
    sample = complete.sample(n=min(rows, len(complete)), random_state=0)
    return {
        "estimator": flights.fit_model(train),
        "x_train": x_train,
        "x_valid": x_march.head(VALIDATION_ROWS),
        "records": json.loads(sample.to_json(orient="records")),
        "train_rows": len(train),
    }


def request_bodies(records: list[dict[str, Any]]) -> list[bytes]:
    """One ``{"dataframe_records": [row]}`` body per row."""
    return [json.dumps({"dataframe_records": [row]}).encode() for row in records]


# --- the ctloop side: a private store with the model (and its ONNX form) ---------------


def register_ctloop(built: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """Register the model as ``flights@champion`` and, when ONNX compilation is
    accepted, its compiled form as ``flights@onnx``; the store's settings and ONNX
    outcome."""
    from ctloop.artifacts.model import Model
    from ctloop.artifacts.model._onnx import compile_onnx

    store_url, artifact_url = f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts")
    native = Model.from_estimator(built["estimator"], built["x_train"])
    _register(store_url, artifact_url, native, "champion", tmp)
    compiled = Model.from_estimator(built["estimator"], built["x_train"])
    result = compile_onnx(compiled, built["x_valid"], tolerance=1e-4)
    if result.accepted:
        _register(store_url, artifact_url, compiled, "onnx", tmp)
    in_process = {"native": in_process_ms(native, built["records"])}
    if result.accepted:
        in_process["onnx"] = in_process_ms(compiled, built["records"])
    return {
        "store_url": store_url,
        "artifact_url": artifact_url,
        "onnx": result.to_dict(),
        "in_process_p50_ms": in_process,
    }


def in_process_ms(model: Any, records: list[dict[str, Any]], calls: int = 200) -> float:
    """Median milliseconds of ``Model.predict`` on one record, no HTTP (for reference)."""
    import statistics

    for row in records[:20]:
        model.predict([row])
    times = []
    for i in range(calls):
        start = time.perf_counter()
        model.predict([records[i % len(records)]])
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


def _register(store_url: str, artifact_url: str, model: Any, alias: str, tmp: Path) -> None:
    from ctloop.artifacts import save_value
    from ctloop.registry import open_registry
    from ctloop.store import open_artifact_store, open_metadata_store

    record = save_value(model, open_artifact_store(artifact_url), staging_root=tmp / "stage")
    open_metadata_store(store_url).put_artifacts([record])
    registry = open_registry(store_url)
    try:
        version = registry.register_version("flights", record.id).version
        registry.set_alias("flights", alias, version, reason="serving benchmark")
    finally:
        registry.close()


def ctloop_command(alias: str, port: int, tmp: Path) -> list[str]:
    """``ctloop serve flights@ALIAS`` on ``port``, predictions not logged."""
    serve = ["serve", f"flights@{alias}", "--port", str(port), "--no-log-predictions"]
    return [sys.executable, "-m", "ctloop", *serve, "--cache-dir", str(tmp / f"cache-{alias}")]


def ctloop_env(store: dict[str, Any], tmp: Path) -> dict[str, str]:
    """A clean environment pointing ctloop at the private store."""
    return clean_env() | {
        "CTLOOP_HOME": str(tmp / "home"),
        "CTLOOP_STORE_URL": store["store_url"],
        "CTLOOP_ARTIFACT_URL": store["artifact_url"],
    }


# --- the MLflow side ---------------------------------------------------------------------


def mlflow_model(built: dict[str, Any], tmp: Path) -> tuple[Path, Path]:
    """The MLflow venv's Python and the saved MLflow model folder."""
    import sklearn

    python = ensure_mlflow_venv()
    pickled, rows = tmp / "model.pkl", tmp / "rows.json"
    payload = {"model": built["estimator"], "sklearn": sklearn.__version__}
    pickled.write_bytes(pickle.dumps(payload))
    rows.write_text(json.dumps(built["records"][:100]))
    out = tmp / "mlflow-model"
    cmd = [str(python), str(MLFLOW_SCRIPT), str(pickled), str(rows), str(out)]
    run_child(cmd, mlflow_env(python), tmp, timeout=600)
    return python, out


def mlflow_env(python: Path) -> dict[str, str]:
    """A clean environment for MLflow, telemetry off, its venv first on PATH."""
    return clean_env("MLFLOW_") | {
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def mlflow_command(python: Path, model: Path, port: int) -> list[str]:
    """``mlflow models serve`` with one worker on ``port``."""
    serve = ["models", "serve", "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    return [str(python.parent / "mlflow"), *serve, "--env-manager", "local", "-w", "1"]


# --- the bare Starlette app (``--bare-server``) ------------------------------------------


def bare_server(model_path: Path, port: int) -> None:
    """Serve ``POST /invocations``: JSON -> one-row DataFrame -> ``predict_proba``."""
    import orjson
    import pandas as pd
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    model = pickle.loads(model_path.read_bytes())["model"]

    async def invocations(request: Request) -> Response:
        frame = pd.DataFrame(orjson.loads(await request.body())["dataframe_records"])
        body = {"predictions": model.predict_proba(frame)[:, 1].tolist()}
        return Response(orjson.dumps(body), media_type="application/json")

    async def ping(request: Request) -> Response:
        return Response(b"ok")

    app = Starlette(routes=[Route(ROUTE, invocations, methods=["POST"]), Route("/ping", ping)])
    uvicorn.run(
        app, host="127.0.0.1", port=port, loop="uvloop", http="httptools",
        access_log=False, log_level="warning",
    )  # fmt: skip


# --- processes -----------------------------------------------------------------------------


_TAKEN: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and not handed out before by this function (the
    servers start after all their ports are chosen)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port


@contextlib.contextmanager
def server_process(
    name: str, cmd: list[str], env: dict[str, str], port: int, tmp: Path, server: Server
) -> Iterator[str]:
    """Start ``cmd`` in its own process group, yield its base URL once its health
    route answers, and kill the whole group on exit."""
    log = (tmp / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=server.cwd or tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    server.extra["pgid"] = proc.pid  # its own session: the group id is its pid
    try:
        _wait_ready(name, url + server.ping, proc, tmp / f"{name}.log")
        yield url
    finally:
        _stop(proc)
        log.close()


def _wait_ready(name: str, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"{name} exited {proc.returncode}:\n" + "\n".join(tail))
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer {url} within 180 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- measuring -----------------------------------------------------------------------------


def probability(name: str, url: str, server: Server, body: bytes) -> float:
    """The positive-class probability one server returns for the one-row ``body``."""
    request = urllib.request.Request(
        url + server.route, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except OSError as exc:
        raise RuntimeError(f"{name} did not answer {url + server.route}: {exc}") from exc
    if server.peer:
        return serving_peers.probability(name, answer)
    p = answer["predictions"][0]
    return float(p[-1]) if isinstance(p, list) else float(p)


def agreement(urls: dict[str, str], servers: dict[str, Server]) -> dict[str, float]:
    """Largest difference from ctloop's probability over 20 rows, per server."""
    reference = [
        probability("ctloop", urls["ctloop"], servers["ctloop"], b)
        for b in servers["ctloop"].bodies[:20]
    ]
    return {
        name: max(
            abs(probability(name, url, servers[name], b) - r)
            for b, r in zip(servers[name].bodies, reference)
        )
        for name, url in urls.items()
    }


def measure(url: str, bodies: list[bytes], concurrency: int, args: Any) -> dict[str, Any]:
    """One load test of ``url``: qps, latency percentiles (ms), errors, load average."""
    from ctloop.errors import LoadTestError
    from ctloop.serve._loadtest import LoadTestConfig, run_load_test

    load = os.getloadavg()[0]
    config = LoadTestConfig(
        url,
        body=bodies,
        headers={"Content-Type": "application/json"},
        concurrency=concurrency,
        duration_s=args.duration,
        warmup_s=args.warmup,
        timeout_s=30,
    )
    try:
        result = run_load_test(config)
    except LoadTestError as exc:  # no answer at all in the measured window
        return {"qps": 0.0, "error": str(exc), "load1": load}
    keys = ("qps", "p50_ms", "p95_ms", "p99_ms", "mean_ms")
    figures: dict[str, Any] = {key: round(getattr(result, key), 3) for key in keys}
    return figures | {"requests": result.requests, "errors": result.errors, "load1": load}


def worker_cpu_seconds(server: Server) -> dict[int, float]:
    """CPU seconds (user and system) of each worker process of a server started with
    several (every process of its group but the supervisor); empty for one worker."""
    pgid = server.extra.get("pgid")
    if server.extra.get("workers", 1) < 2 or pgid is None:
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in serving_wrk.group_pids(pgid):
        if pid == pgid:
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return out


def cpu_split(before: dict[int, float], server: Server) -> dict[str, Any]:
    """How one test's CPU time divided between the worker processes (a proxy for the
    requests each served): seconds per worker, busiest first, and the busiest's share."""
    after = worker_cpu_seconds(server)
    used = sorted(
        (after[pid] - before.get(pid, 0.0) for pid in after if pid in before), reverse=True
    )
    used = [round(u, 2) for u in used if u >= 0.02]  # not the spawn helper processes
    total = sum(used)
    return {"cpu_s": used, "busiest_share": round(used[0] / total, 3) if total else None}


def run_rounds(
    urls: dict[str, str], servers: dict[str, Server], args: Any
) -> dict[str, dict[str, Any]]:
    """Every server at every concurrency, alternating, ``args.rounds`` times; per server
    and concurrency the round with the most requests/s, and all rounds."""
    rounds: dict[str, dict[str, list[dict[str, Any]]]] = {n: {} for n in urls}
    for _ in range(args.rounds):
        for concurrency in args.concurrency:
            for name, url in urls.items():
                target = url + servers[name].route
                before = worker_cpu_seconds(servers[name])
                figures = measure(target, servers[name].bodies, concurrency, args)
                if before:
                    figures["worker_cpu_split"] = cpu_split(before, servers[name])
                rounds[name].setdefault(f"c{concurrency}", []).append(figures)
                print(f"{name} c={concurrency}: {figures}", file=sys.stderr)
    return {
        name: {
            **{key: max(samples, key=lambda s: s["qps"]) for key, samples in per.items()},
            "rounds": per,
        }
        for name, per in rounds.items()
    }


def cross_check(
    urls: dict[str, str],
    servers: dict[str, Server],
    measured: dict[str, Any],
    args: Any,
    tmp: Path,
) -> dict[str, Any]:
    """wrk beside the Python load generator (:mod:`serving_wrk`) for ctloop native,
    ctloop ONNX and the better batched peer at c=32, at every concurrency."""
    if args.no_wrk or not serving_wrk.available():
        return {"skipped": "--no-wrk" if args.no_wrk else "wrk is not installed"}
    names: list[str] = [n for n in ("ctloop", "ctloop_onnx") if n in urls]
    peers = [p for p in PEERS_BATCHED if _c32(measured, p)]
    if peers:
        names.append(max(peers, key=lambda p: _c32(measured, p)["qps"]))
    targets = {
        n: (urls[n] + servers[n].route, servers[n].bodies, servers[n].extra["pgid"]) for n in names
    }

    def python_generator(url: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
        figures = measure(url, bodies, concurrency, args)
        print(f"python generator {url} c={concurrency}: {figures}", file=sys.stderr)
        return figures

    found = serving_wrk.cross_check(targets, args.concurrency, args.duration, python_generator, tmp)
    if peers:  # the headline ratio as wrk measures it (pinned: one core each)
        theirs = found.get(f"{names[-1]}_c32", {}).get("wrk", {})
        for ours in names[:-1]:
            mine = found.get(f"{ours}_c32", {}).get("wrk", {})
            if mine.get("qps") and theirs.get("qps"):
                found[f"{ours}_vs_{names[-1]}_c32_qps"] = round(mine["qps"] / theirs["qps"], 2)
                found[f"{ours}_vs_{names[-1]}_c32_p99"] = round(
                    mine["p99_ms"] / theirs["p99_ms"], 3
                )
    return found | {"servers": names}


# --- the report ------------------------------------------------------------------------------


def ratios(servers: dict[str, Any]) -> dict[str, Any]:
    """ctloop's figures over MLflow's at concurrency 32 (and over the bare app's)."""
    out: dict[str, Any] = {}
    for ours in ("ctloop", "ctloop_onnx"):
        if ours not in servers or "c32" not in servers[ours]:
            continue
        for peer in ("mlflow", "starlette_bare"):
            a, b = servers[ours]["c32"], servers[peer]["c32"]
            if "p99_ms" not in a or "p99_ms" not in b:
                continue
            out[f"{ours}_vs_{peer}_c32"] = {
                "qps": round(a["qps"] / b["qps"], 2),
                "p99": round(a["p99_ms"] / b["p99_ms"], 3),
            }
    return out


def goals(servers: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    """The targets, for each ctloop runtime served."""
    out: dict[str, Any] = {}
    for ours in ("ctloop", "ctloop_onnx"):
        key = f"{ours}_vs_mlflow_c32"
        if key in found:
            out[f"{ours}_qps_10x_mlflow"] = found[key]["qps"] >= 10
            out[f"{ours}_p99_fifth_of_mlflow"] = found[key]["p99"] <= 0.2
        if ours in servers and "p50_ms" in servers[ours].get("c1", {}):
            out[f"{ours}_p50_c1_under_5ms"] = servers[ours]["c1"]["p50_ms"] < 5
    return out


PEERS_BATCHED = ("bentoml", "mlserver")


def _c32(servers: dict[str, Any], name: str) -> dict[str, Any]:
    figures: dict[str, Any] = servers.get(name, {}).get("c32", {})
    return figures if "p99_ms" in figures else {}


def peer_ratios(servers: dict[str, Any]) -> dict[str, Any]:
    """ctloop native (and ONNX) over the better batched peer at c=32, and two workers
    over one."""
    out: dict[str, Any] = {}
    peers = [(p, _c32(servers, p)) for p in PEERS_BATCHED if _c32(servers, p)]
    if peers:
        best, figures = max(peers, key=lambda kv: kv[1]["qps"])
        for ours in ("ctloop", "ctloop_onnx"):
            mine = _c32(servers, ours)
            if mine:
                out[f"{ours}_vs_best_batched_peer_c32"] = {
                    "peer": best,
                    "qps": round(mine["qps"] / figures["qps"], 2),
                    "p99": round(mine["p99_ms"] / figures["p99_ms"], 3),
                }
    one = _c32(servers, "ctloop")
    for name in ("ctloop_workers2", "ctloop_workers2_shared_socket"):
        two = _c32(servers, name)
        if one and two:
            out[f"{name}_vs_one_c32_qps"] = round(two["qps"] / one["qps"], 2)
    return out


def peer_goals(servers: dict[str, Any], in_process: dict[str, float]) -> dict[str, Any]:
    """Each goal against the peers: the measured value, the target, whether it is met
    and else ``missed_by`` (how far the value falls short, in the value's unit)."""
    found = peer_ratios(servers)
    goals: dict[str, Any] = {}

    def goal(name: str, value: float, target: float, *, at_least: bool) -> None:
        met = value >= target if at_least else value <= target
        short = target - value if at_least else value - target
        goals[name] = {
            "met": met,
            "value": round(value, 3),
            "target": target,
            "missed_by": 0 if met else round(short, 3),
        }

    vs = found.get("ctloop_vs_best_batched_peer_c32")
    if vs:
        goal("ctloop_qps_5x_best_batched_peer", vs["qps"], 5, at_least=True)
        goal("ctloop_p99_third_of_best_batched_peer", vs["p99"], round(1 / 3, 3), at_least=False)
    c1 = servers.get("ctloop", {}).get("c1", {})
    if "p50_ms" in c1:
        above = c1["p50_ms"] - in_process["native"]
        goal("ctloop_c1_p50_ms_above_in_process", above, 1.0, at_least=False)
        theirs = servers.get("mlserver_inprocess", {}).get("c1", {})
        if "p50_ms" in theirs:
            goal("ctloop_c1_p50_over_mlserver_inprocess", c1["p50_ms"] / theirs["p50_ms"], 1.0,
                 at_least=False)  # fmt: skip
    onnx = _c32(servers, "ctloop_onnx")
    if onnx:
        goal("ctloop_onnx_c32_qps", onnx["qps"], 5000, at_least=True)
    if "ctloop_workers2_vs_one_c32_qps" in found:
        goal("ctloop_workers2_over_one_c32", found["ctloop_workers2_vs_one_c32_qps"], 1.8,
             at_least=True)  # fmt: skip
    return goals


def environment(mlflow_python: Path) -> dict[str, Any]:
    """Machine and library versions."""
    versions = {
        dist: importlib.metadata.version(dist)
        for dist in ("ctloop", "scikit-learn", "pandas", "uvicorn", "starlette", "onnxruntime")
    }
    probe = "import importlib.metadata as m; print(m.version('mlflow'))"
    mlflow = subprocess.run([str(mlflow_python), "-c", probe], capture_output=True, text=True)
    return {
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions | {"mlflow": mlflow.stdout.strip()},
    }


def server_commands(
    store: dict[str, Any], python: Path, model_dir: Path, tmp: Path, args: Any, bodies: list[bytes]
) -> dict[str, Server]:
    """Each server (``OMP_NUM_THREADS`` set alike)."""
    omp = {"OMP_NUM_THREADS": str(args.omp_threads)} if args.omp_threads > 0 else {}
    bare = [sys.executable, __file__, "--bare-server", str(tmp / "model.pkl")]
    env = ctloop_env(store, tmp)
    port = free_port()
    servers = {"ctloop": Server(ctloop_command("champion", port, tmp), env, port, bodies)}
    if store["onnx"]["accepted"]:
        port = free_port()
        servers["ctloop_onnx"] = Server(ctloop_command("onnx", port, tmp), env, port, bodies)
    if args.with_peers:
        port = free_port()
        cmd = [*ctloop_command("champion", port, tmp), "--workers", "2"]
        servers["ctloop_workers2"] = Server(cmd, env, port, bodies, extra={"workers": 2})
        port = free_port()
        cmd = [*ctloop_command("champion", port, tmp), "--workers", "2", "--shared-socket"]
        servers["ctloop_workers2_shared_socket"] = Server(
            cmd, env, port, bodies, extra={"workers": 2}
        )
    port = free_port()
    servers["mlflow"] = Server(
        mlflow_command(python, model_dir, port), mlflow_env(python), port, bodies
    )
    port = free_port()
    servers["starlette_bare"] = Server([*bare, "--port", str(port)], clean_env(), port, bodies)
    for server in servers.values():
        server.env = server.env | omp
    return servers


def peer_servers(built: dict[str, Any], tmp: Path, omp_threads: int) -> dict[str, Server]:
    """BentoML and MLServer, adaptive batching on and off (:mod:`serving_peers`)."""
    import joblib
    import sklearn

    pythons = serving_peers.peer_venvs(sklearn.__version__)
    omp = {"OMP_NUM_THREADS": str(omp_threads)} if omp_threads > 0 else {}
    records = built["records"]
    out: dict[str, Server] = {}
    bento_bodies = serving_peers.bentoml_bodies(records)
    for name, batch in (("bentoml", True), ("bentoml_nobatch", False)):
        folder, env = serving_peers.bentoml_setup(tmp, tmp / "model.pkl", batch)
        port = free_port()
        cmd = serving_peers.bentoml_command(pythons["bentoml"], port)
        out[name] = Server(
            cmd, clean_env("BENTOML_") | env | omp, port, bento_bodies,
            route="/predict", ping="/readyz", cwd=folder, peer=True,
        )  # fmt: skip
    model_file = tmp / "model.joblib"
    joblib.dump(built["estimator"], model_file)
    mls_bodies = serving_peers.mlserver_bodies(records)
    for name, batch in (("mlserver", True), ("mlserver_inprocess", False)):
        ports = (free_port(), free_port(), free_port())
        folder = serving_peers.mlserver_setup(tmp, model_file, ports, batch=batch)
        cmd = serving_peers.mlserver_command(pythons["mlserver"], folder)
        out[name] = Server(
            cmd, clean_env("MLSERVER") | omp, ports[0], mls_bodies,
            route="/v2/models/flights/infer", ping="/v2/models/flights/ready", cwd=folder, peer=True,
        )  # fmt: skip
    return out


def bench(args: Any) -> dict[str, Any]:
    """Build the model, start the four servers, measure, stop them."""
    built = build_model(args.rows)
    bodies = request_bodies(built["records"])
    with tempfile.TemporaryDirectory(prefix="ctloop-serving-bench-") as name:
        tmp = Path(name)
        store = register_ctloop(built, tmp)
        python, model_dir = mlflow_model(built, tmp)
        commands = server_commands(store, python, model_dir, tmp, args, bodies)
        if args.with_peers:
            commands |= peer_servers(built, tmp, args.omp_threads)
        with contextlib.ExitStack() as stack:
            urls = {
                name: stack.enter_context(
                    server_process(name, server.cmd, server.env, server.port, tmp, server)
                )
                for name, server in commands.items()
            }
            agree = agreement(urls, commands)
            servers = run_rounds(urls, commands, args)
            wrk = cross_check(urls, commands, servers, args, tmp) if args.with_peers else None
        found = ratios(servers)
        if args.with_peers:
            found |= peer_ratios(servers)
        return {
            "benchmark": "serving",
            "model": "flights HistGradientBoostingClassifier pipeline, fitted on Jan-Feb 2013",
            "train_rows": built["train_rows"],
            "request": f'POST {ROUTE} {{"dataframe_records": [row]}}, one row',
            "distinct_bodies": len(bodies),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "omp_num_threads": args.omp_threads or "unset",
            "kept": "per server and concurrency, the round with the most requests/s",
            "onnx": store["onnx"],
            "in_process_p50_ms": store["in_process_p50_ms"],
            "max_abs_diff_vs_ctloop": {k: float(f"{v:.3g}") for k, v in agree.items()},
            "servers": servers,
            "ratios": found,
            "goals": goals(servers, found)
            | (peer_goals(servers, store["in_process_p50_ms"]) if args.with_peers else {}),
            **({} if wrk is None else {"wrk": wrk}),
            "environment": environment(python),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per test")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds first")
    parser.add_argument("--rounds", type=int, default=2, help="tests per server and level")
    parser.add_argument("--rows", type=int, default=1000, help="distinct request rows")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(c) for c in s.split(",")], default=[1, 32]
    )
    parser.add_argument(
        "--omp-threads", type=int, default=1, help="OMP_NUM_THREADS of every server (0: unset)"
    )
    parser.add_argument(
        "--with-peers",
        action="store_true",
        help="also BentoML and MLServer (batching on and off) and ctloop --workers 2",
    )
    parser.add_argument(
        "--no-wrk",
        action="store_true",
        help="with --with-peers, leave out the wrk cross-check of the headline servers",
    )
    parser.add_argument("--bare-server", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server is not None:
        bare_server(args.bare_server, args.port)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup on kill
    if args.omp_threads > 0:  # this process too (before scikit-learn is imported)
        os.environ["OMP_NUM_THREADS"] = str(args.omp_threads)
    print(json.dumps(bench(args)))


if __name__ == "__main__":
    main()
