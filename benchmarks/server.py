"""MLflow's own client against two servers: ``mlflow server`` (SQLite) and ``ctloop server``
(SQLite, with an API key), the same client script against each, one after the other.

    python benchmarks/server.py                    # 2 per-call runs, scaled to 10
    python benchmarks/server.py --per-call-runs 10 # every per-call run for real

The client runs in ``.bench/mlflow-venv`` (full ``mlflow``, installed on first use, as
``benchmarks/tracking.py`` makes it), telemetry off. Each server starts on a fresh
database and artifact folder in a temporary directory, one worker, on 127.0.0.1. The
script makes, per server:

- ``per_call_metrics_s``: ``RUNS`` runs of ``POINTS`` ``mlflow.log_metric`` calls each
  (one request each); with ``--per-call-runs N`` only N runs are made and the time is
  scaled to ``RUNS`` (``per_call_runs`` says how many were made);
- ``batched_log_batch_s``: ``RUNS`` runs, each one ``MlflowClient.log_batch`` of ``POINTS``
  metric points and ``PARAMS`` params (the client splits it into MLflow's request limits);
- ``params_s``: ``mlflow.log_params`` of ``PARAMS`` params, in each batched run;
- ``model_s``: one scikit-learn ``mlflow.sklearn.log_model`` with ``registered_model_name``
  (its files uploaded through the server's artifact proxy), then an alias set on it.

Then, per server and against a bare Starlette app that answers ``{}`` to
``runs/log-metric`` (the client's own floor), a probe of ``--probe-calls`` per-call
``mlflow.log_metric`` calls in one run, with the server's CPU (its process and its
children, from ``/proc``) read before and after:

- ``client_floor_ms``: ms per call against the bare app: the MLflow client's own Python,
  ``requests`` and HTTP on this machine, which no server can remove;
- ``<server>_probe_ms_per_call`` and ``<server>_server_cpu_ms_per_call``: ms per call end
  to end, and the server's CPU ms per call;
- ``per_call_ceiling``: MLflow's ms per call over the floor, the most any server could be
  faster than ``mlflow server`` with this client; ``per_call_goal_possible`` says whether
  that reaches 5×.

Prints one JSON line: both servers' timings (best of ``--repeat``), and how many times
faster ctloop is per call and batched (goals: 5× and 2×).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peers import best_timings, clean_env, ensure_venv

RUNS, POINTS, PARAMS = 10, 1_000, 100
GOALS = {"per_call": 5.0, "batched": 2.0}

CLIENT = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

RUNS, POINTS, PARAMS, PER_CALL_RUNS = (int(v) for v in sys.argv[1:5])
client = MlflowClient()
experiment_id = mlflow.create_experiment("bench")
mlflow.set_experiment(experiment_id=experiment_id)

metric_s = 0.0
for run in range(PER_CALL_RUNS):
    with mlflow.start_run(run_name=f"per-call-{run}"):
        t = time.perf_counter()
        for i in range(POINTS):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        metric_s += time.perf_counter() - t

batch_s = params_s = 0.0
for run in range(RUNS):
    with mlflow.start_run(run_name=f"batched-{run}") as active:
        now = int(time.time() * 1000)
        metrics = [Metric("loss", 1.0 / (i + 1), now + i, i) for i in range(POINTS)]
        params = [Param(f"p{p}", str(p)) for p in range(PARAMS)]
        t = time.perf_counter()
        client.log_batch(active.info.run_id, metrics=metrics, params=params)
        batch_s += time.perf_counter() - t
        t = time.perf_counter()
        mlflow.log_params({f"q{p}": p for p in range(PARAMS)})
        params_s += time.perf_counter() - t

X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=300).fit(X, y)
t = time.perf_counter()
with mlflow.start_run(run_name="model"):
    mlflow.sklearn.log_model(model, name="model", registered_model_name="bench-model")
client.set_registered_model_alias("bench-model", "staging", 1)
model_s = time.perf_counter() - t
history = client.get_metric_history(active.info.run_id, "loss")
assert len(history) == POINTS, len(history)
print(json.dumps({
    "per_call_metrics_s": metric_s * RUNS / max(PER_CALL_RUNS, 1),
    "batched_log_batch_s": batch_s,
    "params_s": params_s,
    "model_s": model_s,
}))
"""

PROBE = """
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import mlflow

CALLS = int(sys.argv[1])
with mlflow.start_run(run_name="probe"):
    for i in range(20):  # warm up: connections, caches
        mlflow.log_metric("warm", 1.0, step=i)
    print("ready", flush=True)
    sys.stdin.readline()
    t = time.perf_counter()
    for i in range(CALLS):
        mlflow.log_metric("probe", 1.0 / (i + 1), step=i)
    elapsed = time.perf_counter() - t
    print(json.dumps({"ms_per_call": 1000 * elapsed / CALLS}), flush=True)
    sys.stdin.readline()
"""

#: the least a server can do for the client: ``{}`` to every call, a run to ``runs/create``
FLOOR_APP = """
import time
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

def _run():
    now = int(time.time() * 1000)
    return {"run_id": "0" * 32, "run_uuid": "0" * 32, "experiment_id": "0", "run_name": "probe",
            "user_id": "probe", "status": "RUNNING", "start_time": now,
            "artifact_uri": "mlflow-artifacts:/0", "lifecycle_stage": "active"}

async def answer(request):
    path = request.url.path
    if path.endswith("/runs/create"):
        return JSONResponse({"run": {"info": _run(), "data": {}}})
    if path.endswith("/runs/update"):
        return JSONResponse({"run_info": _run()})
    return JSONResponse({})

app = Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])
"""


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and every live descendant, from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(used.get(p, 0.0) for p in tree)


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until ``url`` answers (any status), or fail with the server's output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers: a 401 or 404 is an answer
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} in {timeout:.0f} s")


@contextmanager
def serving(
    cmd: list[str], env: dict[str, str], cwd: Path, probe: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the duration of the block."""
    with open(cwd / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(probe, proc)
            yield proc
        except RuntimeError as exc:
            log.flush()
            tail = (cwd / "server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{exc}\n{tail}") from None
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def client_env(url: str, token: str | None) -> dict[str, str]:
    """The environment of the client script: the server, the key, no telemetry."""
    env = clean_env("MLFLOW_")
    env.update(
        {
            "MLFLOW_TRACKING_URI": url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        }
    )
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    return env


def run_client(python: Path, url: str, token: str | None, per_call_runs: int, cwd: Path) -> Any:
    """The client script's timings against ``url``."""
    script = cwd / "client.py"
    script.write_text(CLIENT)
    args = [str(RUNS), str(POINTS), str(PARAMS), str(per_call_runs)]
    proc = subprocess.run(
        [str(python), str(script), *args],
        env=client_env(url, token),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the client failed against {url}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def probe_per_call(
    python: Path, url: str, token: str | None, server: subprocess.Popen[bytes], calls: int
) -> dict[str, float]:
    """ms per ``mlflow.log_metric`` call end to end, and the server's CPU ms per call."""
    script = Path(tempfile.mkdtemp(prefix="bench-probe-")) / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.Popen(
        [str(python), str(script), str(calls)],
        env=client_env(url, token),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the probe failed against {url}:\n{proc.communicate()[1][-3000:]}")
        before = tree_cpu_s(server.pid)
        proc.stdin.write("\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        after = tree_cpu_s(server.pid)
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if not line.strip():
        raise RuntimeError(f"the probe failed against {url}:\n{proc.communicate()[1][-3000:]}")
    return {
        "ms_per_call": round(json.loads(line)["ms_per_call"], 3),
        "server_cpu_ms_per_call": round(1000 * (after - before) / calls, 3),
    }


def against_floor(python: Path, calls: int) -> dict[str, float]:
    """The probe against a bare Starlette app (uvicorn, one worker): the client's floor."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
        tmp = Path(folder)
        (tmp / "floor_app.py").write_text(FLOOR_APP)
        port = free_port()
        cmd = [
            sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        env = clean_env() | {"PYTHONPATH": str(tmp)}
        url = f"http://127.0.0.1:{port}"
        with serving(cmd, env, tmp, f"{url}/health") as server:
            return probe_per_call(python, url, None, server, calls)


def against_mlflow(python: Path, per_call_runs: int, calls: int) -> dict[str, Any]:
    """The client against ``mlflow server`` on SQLite, artifacts proxied to a folder."""
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-server-") as folder:
        tmp = Path(folder)
        port = free_port()
        cmd = [
            str(python.parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp / 'mlflow.db'}",
            "--artifacts-destination",
            str(tmp / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        env = client_env("", None) | {"PATH": os.environ.get("PATH", "")}
        url = f"http://127.0.0.1:{port}"
        with serving(cmd, env, tmp, f"{url}/health") as server:
            found = run_client(python, url, None, per_call_runs, tmp)
            return found | {"probe": probe_per_call(python, url, None, server, calls)}


def against_ctloop(python: Path, per_call_runs: int, calls: int) -> dict[str, Any]:
    """The client against ``ctloop server`` on SQLite, with an admin key."""
    ctloop = shutil.which("ctloop", path=str(Path(sys.executable).parent)) or "ctloop"
    with tempfile.TemporaryDirectory(prefix="bench-ctloop-server-") as folder:
        tmp = Path(folder)
        env = clean_env() | {
            "CTLOOP_STORE_URL": f"sqlite:///{tmp / 'metadata.db'}",
            "CTLOOP_ARTIFACT_URL": str(tmp / "artifacts"),
            "CTLOOP_HOME": str(tmp / "home"),
        }
        made = subprocess.run(
            [ctloop, "server", "bootstrap"], env=env, cwd=tmp, capture_output=True, text=True
        )
        if made.returncode != 0:
            raise RuntimeError(f"ctloop server bootstrap failed:\n{made.stderr[-2000:]}")
        token = made.stdout.split()[0]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [ctloop, "server", "--port", str(port)]
        with serving(cmd, env, tmp, f"{url}/api/v1/runs") as server:
            found = run_client(python, url, token, per_call_runs, tmp)
            return found | {"probe": probe_per_call(python, url, token, server, calls)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-call-runs", type=int, default=2, help=f"of {RUNS}, scaled")
    parser.add_argument("--repeat", type=int, default=1, help="take the best of N")
    parser.add_argument("--probe-calls", type=int, default=1000, help="log_metric calls per probe")
    args = parser.parse_args(argv)
    python = ensure_venv("mlflow-venv", ["mlflow"], "import mlflow")
    runs = max(1, min(args.per_call_runs, RUNS))
    calls = max(1, args.probe_calls)
    mlflow_runs = [against_mlflow(python, runs, calls) for _ in range(args.repeat)]
    ctloop_runs = [against_ctloop(python, runs, calls) for _ in range(args.repeat)]
    floor = min(against_floor(python, calls)["ms_per_call"] for _ in range(args.repeat))
    mlflow_probe = min((r.pop("probe") for r in mlflow_runs), key=lambda p: p["ms_per_call"])
    ctloop_probe = min((r.pop("probe") for r in ctloop_runs), key=lambda p: p["ms_per_call"])
    mlflow, ctloop = best_timings(mlflow_runs), best_timings(ctloop_runs)
    per_call = mlflow["per_call_metrics_s"] / ctloop["per_call_metrics_s"]
    batched = mlflow["batched_log_batch_s"] / ctloop["batched_log_batch_s"]
    ceiling = mlflow_probe["ms_per_call"] / floor
    report = {
        "benchmark": "server",
        "runs": RUNS,
        "points": POINTS,
        "params": PARAMS,
        "per_call_runs": runs,
        "mlflow_server": mlflow,
        "ctloop_server": ctloop,
        "speedup_per_call": round(per_call, 2),
        "speedup_batched": round(batched, 2),
        "probe_calls": calls,
        "client_floor_ms": round(floor, 3),
        "mlflow_probe_ms_per_call": mlflow_probe["ms_per_call"],
        "mlflow_server_cpu_ms_per_call": mlflow_probe["server_cpu_ms_per_call"],
        "ctloop_probe_ms_per_call": ctloop_probe["ms_per_call"],
        "ctloop_server_cpu_ms_per_call": ctloop_probe["server_cpu_ms_per_call"],
        "speedup_probe": round(mlflow_probe["ms_per_call"] / ctloop_probe["ms_per_call"], 2),
        "per_call_ceiling": round(ceiling, 2),
        "per_call_goal_possible": (
            f"yes: a server answering in no time would be {ceiling:.2f}x mlflow server"
            if ceiling >= GOALS["per_call"]
            else f"no: the client's floor alone ({floor:.2f} ms a call) caps any server at "
            f"{ceiling:.2f}x mlflow server, under the {GOALS['per_call']}x goal"
        ),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "goals": {
            "per_call": f">= {GOALS['per_call']}x: {'met' if per_call >= GOALS['per_call'] else 'not met'}",
            "batched": f">= {GOALS['batched']}x: {'met' if batched >= GOALS['batched'] else 'not met'}",
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
