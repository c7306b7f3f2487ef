"""Point-in-time join: N entity rows × M feature rows, 5 features, ctloop against the
bare DuckDB ASOF join and, with ``--with-peers``, Feast's file offline store.

    python benchmarks/features.py                                  # 100,000 × 1,000,000
    python benchmarks/features.py --entities 10000 --features 100000
    python benchmarks/features.py --with-peers                     # adds Feast 0.67

    python benchmarks/features.py --online --with-peers           # the online part instead
    python benchmarks/features.py --serving --online-rows 100000  # what serving's lookup adds
    python benchmarks/features.py --online --online-rows 10000000 --stores sqlite --calls 500

Prints one JSON line:

- ``ctloop_s``: ``get_historical_features`` from the Parquet file (best of ``--repeat``),
  with ctloop's rule (a row counts once created); ``ctloop_feast_rule_s``: the same with
  ``created_as_tiebreak_only=True``, Feast's rule.
- ``asof_s``: one bare DuckDB ASOF join of the same files (no ttl, no created column, no
  ties): the floor any DuckDB-based join stands on.
- ``asof_ratio``: ``ctloop_s / asof_s``; ``ctloop_cpu_s``, ``asof_cpu_s`` and
  ``asof_cpu_ratio``: the same in CPU seconds of all threads (steadier than wall time on a
  shared machine); ``loadavg``: the machine's load when the timing started.
- ``peak_rss_mib``: this process's peak resident memory (Linux ``VmHWM``); the data are
  made in a child process, so it is the join's.
- with ``--with-peers``, ``feast``: Feast's ``get_historical_features(...).to_df()`` on a
  local repository over the same Parquet file, in a fresh process of a throwaway virtual
  environment (``.bench/feast-venv``, made on first use): ``historical_s``, ``rows``
  (entity rows it returned), ``peak_rss_mib``; and ``agree``: the share of entity rows
  Feast returned whose five values equal ctloop's under Feast's rule.

With ``--online`` (``--online-rows`` feature rows, default 1,000,000, over ``--online-keys``
keys, default as many), one JSON line ``features_online`` instead:

- ``sqlite`` and ``redis`` (a redis-server started on a free loopback port; ``--stores``
  picks): ``materialize_s`` and ``rows_per_s`` (feature rows read per second) of
  ``materialize`` into that online store, ``materialize_cpu_s`` and ``rows_per_cpu_s``
  (CPU seconds of this process's threads, not Redis's), ``peak_rss_mib``, and
  ``p50_ms``/``p99_ms`` of ``get_online_features`` by feature service name (the
  definitions read from the workspace on every call) for 1 and 100 entity rows
  (``--calls`` calls each, random keys);
- with ``--trace-memory``, ``python_peak_mib`` beside them: the peak of the Python
  allocations while materializing (tracemalloc: what the write path holds, without
  DuckDB's sort, which stays within its memory limit), to compare row counts;
- ``redis_agrees``: whether both stores return the same values for every 1,000th key;
- with ``--with-peers``, ``feast``: the same figures of Feast 0.67 with its SQLite online
  store (``materialize`` and ``get_online_features(...).to_dict()``), in its own process,
  and ``agree``: the share of those keys whose values Feast and ctloop agree on.

With ``--serving``, one JSON line ``features_serving``: the p50/p99 of a prediction of a
model sent its five features (``features_sent``) and of one sent only the key, its
features looked up as ``ctloop serve`` does (``features_looked_up``); ``added_p50_ms`` is
the difference, ``added_cpu_p50_ms`` the same in CPU time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.append(str(Path(__file__).resolve().parent))

FEATURES = [f"f{i}" for i in range(5)]
START = 1_704_067_200  # 2024-01-01, seconds
SPAN = 30 * 86400

FEAST_CHILD = r"""
import json, sys, time, resource
from datetime import timedelta
from pathlib import Path
import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.types import Float64
folder, ttl_s = Path(sys.argv[1]), int(sys.argv[2])
config = RepoConfig(project="bench", registry=str(folder / "registry.db"), provider="local",
                    online_store={"type": "sqlite", "path": str(folder / "online.db")},
                    offline_store={"type": "file"}, entity_key_serialization_version=3)
store = FeatureStore(config=config)
key = Entity(name="key", join_keys=["key"])
source = FileSource(path=str(folder / "features.parquet"), timestamp_field="ts", created_timestamp_column="created")
view = FeatureView(name="stats", entities=[key], ttl=timedelta(seconds=ttl_s),
                   schema=[Field(name=f"f{i}", dtype=Float64) for i in range(5)], source=source)
store.apply([key, view])
entities = pd.read_parquet(folder / "entities.parquet")
start = time.perf_counter()
result = store.get_historical_features(entity_df=entities, features=[f"stats:f{i}" for i in range(5)]).to_df()
took = time.perf_counter() - start
result[["row", *[f"f{i}" for i in range(5)]]].to_parquet(folder / "feast_result.parquet")
print(json.dumps({"historical_s": round(took, 3), "rows": len(result),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def make_data(folder: Path, entities: int, features: int, keys: int, seed: int = 0) -> None:
    """Write ``features.parquet`` and ``entities.parquet`` with random keys and times."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    ts = START + rng.integers(0, SPAN, features)
    table = {
        "key": rng.integers(0, keys, features),
        "ts": _times(ts),
        "created": _times(ts + rng.integers(0, 3600, features)),
    }
    table |= {name: rng.normal(size=features) for name in FEATURES}
    pq.write_table(pa.table(table), folder / "features.parquet")
    when = _times(START + rng.integers(0, SPAN, entities))
    frame = {
        "row": np.arange(entities),
        "key": rng.integers(0, keys, entities),
        "event_timestamp": when,
    }
    pq.write_table(pa.table(frame), folder / "entities.parquet")


def _times(seconds: Any) -> Any:
    import pyarrow as pa

    return pa.array(seconds * 1_000_000, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def time_ctloop(
    folder: Path, ttl_s: int, repeat: int, feast_rule: bool
) -> tuple[float, float, Any]:
    """Best seconds (wall, then CPU of all threads) of ``get_historical_features`` over
    the files, and its last result."""
    import pyarrow.parquet as pq

    from ctloop.features import Entity, FeatureView, Field, get_historical_features

    view = FeatureView("stats", entities=[Entity("key")], source=str(folder / "features.parquet"),
                       timestamp="ts", created="created", ttl=ttl_s, fields=[Field(n, float) for n in FEATURES])  # fmt: skip
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        entities = pq.read_table(folder / "entities.parquet")
        start, cpu = time.perf_counter(), time.process_time()
        result = get_historical_features(entities, [view], created_as_tiebreak_only=feast_rule)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu, result


def time_asof(folder: Path, repeat: int) -> tuple[float, float]:
    """Best seconds (wall, CPU) of one bare DuckDB ASOF join of the same files."""
    import duckdb

    query = (
        f"SELECT e.row, {', '.join('f.' + n for n in FEATURES)} FROM read_parquet('{folder}/entities.parquet') e "
        f"ASOF LEFT JOIN read_parquet('{folder}/features.parquet') f ON e.key = f.key AND e.event_timestamp >= f.ts"
    )
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        with duckdb.connect() as con:
            start, cpu = time.perf_counter(), time.process_time()
            con.sql(query).to_arrow_table()
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu


def run_feast(folder: Path, ttl_s: int, ours: Any) -> dict[str, Any]:
    """Feast's figures in its own virtual environment, and how often it agrees with ctloop."""
    from peers import clean_env, ensure_venv, offline_prefix

    try:
        python = ensure_venv("feast-venv", ["feast==0.67.0"], "import feast")
        import subprocess

        proc = subprocess.run([*offline_prefix(), str(python), "-c", FEAST_CHILD, str(folder), str(ttl_s)],
                              capture_output=True, text=True, env=clean_env("FEAST_"), timeout=3600)  # fmt: skip
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except Exception as exc:  # a peer that cannot be installed or run is reported, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}
    figures["agree"] = _agreement(folder / "feast_result.parquet", ours)
    return figures


def _agreement(path: Path, ours: Any) -> float:
    import numpy as np
    import pyarrow.parquet as pq

    theirs = pq.read_table(path).to_pandas().set_index("row").sort_index()
    mine = ours.to_pandas().set_index("row").loc[theirs.index]
    same = np.ones(len(theirs), dtype=bool)
    for name in FEATURES:
        a, b = mine[name].to_numpy(dtype=float), theirs[name].to_numpy(dtype=float)
        same &= np.isclose(a, b, equal_nan=True)
    return round(float(same.mean()) if len(same) else 1.0, 4)


FEAST_ONLINE_CHILD = r"""
import json, sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path
import numpy as np
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.types import Float64, Int64
folder, keys, calls = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
config = RepoConfig(project="bench_online", registry=str(folder / "feast_registry.db"), provider="local",
                    online_store={"type": "sqlite", "path": str(folder / "feast_online.db")},
                    offline_store={"type": "file"}, entity_key_serialization_version=3)
store = FeatureStore(config=config)
key = Entity(name="key", join_keys=["key"])
source = FileSource(path=str(folder / "online.parquet"), timestamp_field="ts", created_timestamp_column="created")
view = FeatureView(name="stats", entities=[key], ttl=timedelta(days=36500), source=source,
                   schema=[Field(name="key", dtype=Int64), *[Field(name=f"f{i}", dtype=Float64) for i in range(5)]])
store.apply([key, view])
utc = timezone.utc
start = time.perf_counter()
store.materialize(start_date=datetime(2023, 12, 1, tzinfo=utc), end_date=datetime(2024, 3, 1, tzinfo=utc))
out = {"materialize_s": round(time.perf_counter() - start, 3)}
rng = np.random.default_rng(1)
refs = [f"stats:f{i}" for i in range(5)]
for rows in (1, 100):
    took = []
    for _ in range(calls):
        entity_rows = [{"key": int(k)} for k in rng.integers(0, keys, rows)]
        t = time.perf_counter()
        store.get_online_features(features=refs, entity_rows=entity_rows).to_dict()
        took.append(time.perf_counter() - t)
    ms = np.array(took) * 1000
    out[f"rows_{rows}"] = {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}
check = store.get_online_features(features=refs, entity_rows=[{"key": k} for k in range(0, keys, max(1, keys // 1000))]).to_dict()
out["check"] = [check[f"f{i}"] for i in range(5)]
print(json.dumps(out))
"""

SERVICE = """
from ctloop.features import Entity, FeatureService, FeatureView, Field
stats = FeatureView("stats", entities=[Entity("key")], source={source!r}, timestamp="ts", created="created",
                    ttl="36500d", fields=[Field(f"f{{i}}", float) for i in range(5)])
bench = FeatureService("bench", [stats])
"""


def make_online_data(folder: Path, rows: int, keys: int, seed: int = 0) -> None:
    """``online.parquet``: ``rows`` feature rows, every key of ``0..keys-1`` at least once
    when ``keys <= rows``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    key = np.arange(rows) % keys
    rng.shuffle(key)
    ts = START + rng.integers(0, SPAN, rows)
    table = {"key": key, "ts": _times(ts), "created": _times(ts + rng.integers(0, 3600, rows))}
    table |= {name: rng.normal(size=rows) for name in FEATURES}
    pq.write_table(pa.table(table), folder / "online.parquet")


def _percentiles(took: list[float]) -> dict[str, float]:
    import numpy as np

    ms = np.array(took) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}  # fmt: skip


def time_online(
    workspace: Any, rows: int, keys: int, calls: int, trace: bool = False
) -> dict[str, Any]:
    """Materialize into ``workspace.online`` and time online reads of the service
    (``trace``: also the peak of Python's allocations while materializing)."""
    import tracemalloc

    import numpy as np

    from ctloop.features import get_online_features, materialize

    if trace:
        tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    [record] = materialize(workspace, ["stats"], end=datetime(2024, 3, 1, tzinfo=UTC))
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    out: dict[str, Any] = {"materialize_s": round(took, 3), "rows_per_s": round(rows / took),
                           "materialize_cpu_s": round(cpu, 3), "rows_per_cpu_s": round(rows / cpu),
                           "keys_written": record.rows_written, "peak_rss_mib": peak_rss_mib()}  # fmt: skip
    if trace:
        out["python_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    rng = np.random.default_rng(1)
    for count in (1, 100):
        samples = []
        for _ in range(calls):
            entity_rows = [{"key": int(k)} for k in rng.integers(0, keys, count)]
            begin = time.perf_counter()
            get_online_features(workspace, "bench", entity_rows)
            samples.append(time.perf_counter() - begin)
        out[f"rows_{count}"] = _percentiles(samples)
    got = get_online_features(
        workspace, "bench", [{"key": k} for k in range(0, keys, max(1, keys // 1000))]
    )
    out["check"] = [got[name] for name in FEATURES]
    return out


def _start_redis(folder: Path) -> tuple[Any, str]:
    import shutil
    import socket
    import subprocess

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run scripts/install-test-deps.sh")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def run_online(
    folder: Path,
    rows: int,
    keys: int,
    calls: int,
    with_peers: bool,
    stores: list[str],
    trace: bool = False,
) -> dict[str, Any]:
    """The ``features_online`` line: ctloop on SQLite and Redis (those of ``stores``),
    Feast beside."""
    import dataclasses

    from ctloop.features._repo import load_definitions
    from ctloop.store._features import DefinitionDraft
    from ctloop.store._online_redis import RedisOnlineStore
    from ctloop.store.workspace import Workspace

    _in_child(make_online_data, folder, rows, keys)
    (folder / "bench_features.py").write_text(SERVICE.format(source=str(folder / "online.parquet")))
    line: dict[str, Any] = {"benchmark": "features_online", "feature_rows": rows, "keys": keys,
                            "features": len(FEATURES), "calls": calls, "loadavg": _loadavg()}  # fmt: skip
    url = f"sqlite:///{folder / 'metadata.db'}"
    with Workspace.open(url, artifacts=str(folder / "artifacts")) as workspace:
        specs = load_definitions(folder / "bench_features.py").specs()
        workspace.features.apply([DefinitionDraft(*spec) for spec in specs])
        if "sqlite" in stores:
            line["sqlite"] = time_online(workspace, rows, keys, calls, trace)
        if "redis" in stores:
            redis, redis_url = _start_redis(folder)
            try:
                online = RedisOnlineStore(redis_url, prefix="bench")
                line["redis"] = time_online(
                    dataclasses.replace(workspace, online=online), rows, keys, calls, trace
                )
                online.close()
            finally:
                redis.terminate()
                redis.wait(10)
    if with_peers and "sqlite" in line:
        line["feast"] = _feast_online(folder, keys, calls)
        if "materialize_s" in line["feast"]:
            line["feast"]["rows_per_s"] = round(rows / line["feast"]["materialize_s"])
            line["agree"] = _online_agreement(line["feast"].pop("check"), line["sqlite"]["check"])
    checks = {name: line[name].pop("check") for name in ("sqlite", "redis") if name in line}
    if len(checks) == 2:
        line["redis_agrees"] = checks["redis"] == checks["sqlite"]
    return line


def run_serving(folder: Path, rows: int, keys: int, calls: int) -> dict[str, Any]:
    """The ``features_serving`` line: one prediction of a model sent its 5 features
    beside one of a model of the service sent only the key (its features read from the
    SQLite online store by ``ctloop serve``'s lookup), p50 and p99 of each."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from ctloop.artifacts.model import Model
    from ctloop.features import get_online_features, materialize
    from ctloop.features._repo import load_definitions
    from ctloop.serve._features import with_online_features
    from ctloop.store._features import DefinitionDraft
    from ctloop.store.workspace import Workspace

    make_online_data(folder, rows, keys)
    (folder / "bench_features.py").write_text(SERVICE.format(source=str(folder / "online.parquet")))
    url = f"sqlite:///{folder / 'metadata.db'}"
    with Workspace.open(url, artifacts=str(folder / "artifacts")) as workspace:
        specs = load_definitions(folder / "bench_features.py").specs()
        workspace.features.apply([DefinitionDraft(*spec) for spec in specs])
        materialize(workspace, ["stats"], end=datetime(2024, 3, 1, tzinfo=UTC))
        rng = np.random.default_rng(2)
        X = pd.DataFrame({name: rng.normal(size=200) for name in FEATURES})
        fitted = LinearRegression().fit(X, rng.normal(size=200))
        service = {"name": "bench", "entity_keys": ["key"], "request": [],
                   "full_feature_names": False, "features": [f"stats:{n}" for n in FEATURES]}  # fmt: skip
        plain = Model.from_estimator(fitted, X)
        served = Model.from_estimator(fitted, X, metadata={"feature_service": service})
        sent, looked_up, sent_cpu, looked_up_cpu = [], [], [], []
        load = _loadavg()
        for key in rng.integers(0, keys, calls):
            row = {"key": int(key)}
            values = get_online_features(workspace, "bench", [row])
            features = [{name: values[name][0] for name in FEATURES}]
            begin, cpu = time.perf_counter(), time.process_time()
            plain.predict(features)
            sent.append(time.perf_counter() - begin)
            sent_cpu.append(time.process_time() - cpu)
            begin, cpu = time.perf_counter(), time.process_time()
            served.predict(with_online_features(workspace, served, [row]))
            looked_up.append(time.perf_counter() - begin)
            looked_up_cpu.append(time.process_time() - cpu)
    line: dict[str, Any] = {"benchmark": "features_serving", "feature_rows": rows, "keys": keys,
                            "features": len(FEATURES), "calls": calls, "loadavg": load,
                            "features_sent": _percentiles(sent),
                            "features_looked_up": _percentiles(looked_up)}  # fmt: skip
    line["added_p50_ms"] = round(
        line["features_looked_up"]["p50_ms"] - line["features_sent"]["p50_ms"], 3
    )
    line["added_cpu_p50_ms"] = round(
        _percentiles(looked_up_cpu)["p50_ms"] - _percentiles(sent_cpu)["p50_ms"], 3
    )
    return line


def _online_agreement(theirs: list[list[Any]], ours: list[list[Any]]) -> float:
    """The share of the checked keys (every keys/1000th) whose five values agree."""
    import numpy as np

    same = np.ones(len(ours[0]), dtype=bool)
    for a, b in zip(theirs, ours, strict=True):
        same &= np.isclose(np.array(a, dtype=float), np.array(b, dtype=float), equal_nan=True)
    return round(float(same.mean()), 4)


def _feast_online(folder: Path, keys: int, calls: int) -> dict[str, Any]:
    from peers import clean_env, ensure_venv, offline_prefix

    try:
        python = ensure_venv("feast-venv", ["feast==0.67.0"], "import feast")
        import subprocess

        proc = subprocess.run([*offline_prefix(), str(python), "-c", FEAST_ONLINE_CHILD, str(folder), str(keys), str(calls)],
                              capture_output=True, text=True, env=clean_env("FEAST_"), timeout=3600)  # fmt: skip
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return figures
    except Exception as exc:  # a peer that cannot be installed or run is reported, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}


def _in_child(function: Any, *args: Any) -> None:
    """Run ``function(*args)`` in a forked process, so that the memory it takes to make
    the data does not count in this process's peak."""
    import multiprocessing

    process = multiprocessing.get_context("fork").Process(target=function, args=args)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"making the data failed (exit code {process.exitcode})")


def _loadavg() -> float:
    """The machine's 1-minute load average when the timing starts (others' work on a
    shared machine slows every figure; the CPU seconds beside them are steadier)."""
    return round(float(Path("/proc/loadavg").read_text().split()[0]), 2)


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main() -> None:
    """Parse the options, run each side and print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--ttl", type=int, default=86_400, help="ttl in seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-peers", action="store_true")
    parser.add_argument("--online", action="store_true", help="the online part instead")
    parser.add_argument(
        "--serving", action="store_true", help="the lookup a served model adds instead"
    )
    parser.add_argument("--online-rows", type=int, default=1_000_000)
    parser.add_argument("--online-keys", type=int, default=None, help="default: --online-rows")
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument(
        "--stores", default="sqlite,redis", help="online stores to time, comma-separated"
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="with --online: also python_peak_mib, the peak of Python's allocations while "
        "materializing (tracemalloc; slows materialization)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.serving:
            keys = args.online_keys or args.online_rows
            print(json.dumps(run_serving(folder, args.online_rows, keys, args.calls)))
            return
        if args.online:
            keys = args.online_keys or args.online_rows
            print(
                json.dumps(
                    run_online(
                        folder,
                        args.online_rows,
                        keys,
                        args.calls,
                        args.with_peers,
                        args.stores.split(","),
                        args.trace_memory,
                    )
                )
            )
            return
        _in_child(make_data, folder, args.entities, args.features, args.keys)
        load = _loadavg()
        ctloop_s, ctloop_cpu, _ = time_ctloop(folder, args.ttl, args.repeat, feast_rule=False)
        feast_rule_s, _, feast_rule_result = time_ctloop(
            folder, args.ttl, args.repeat, feast_rule=True
        )
        asof_s, asof_cpu = time_asof(folder, args.repeat)
        line: dict[str, Any] = {
            "benchmark": "features_historical", "entities": args.entities, "feature_rows": args.features,
            "keys": args.keys, "features": len(FEATURES), "ctloop_s": round(ctloop_s, 3),
            "ctloop_feast_rule_s": round(feast_rule_s, 3), "asof_s": round(asof_s, 3),
            "asof_ratio": round(ctloop_s / asof_s, 2), "ctloop_cpu_s": round(ctloop_cpu, 3),
            "asof_cpu_s": round(asof_cpu, 3), "asof_cpu_ratio": round(ctloop_cpu / asof_cpu, 2),
            "peak_rss_mib": peak_rss_mib(), "loadavg": load,
        }  # fmt: skip
        if args.with_peers:
            line["feast"] = run_feast(folder, args.ttl, feast_rule_result)
            if "historical_s" in line["feast"]:
                line["speed_ratio"] = round(line["feast"]["historical_s"] / ctloop_s, 1)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
