"""The C load generator's view of ``benchmarks/serving.py``'s headline servers
(standard library only): Debian's ``wrk`` and the Python load generator, each pinned to
one CPU with the server pinned to another, one after the other on the same server.

Pinning uses the CPUs this process may run on (``os.sched_getaffinity``): the load
generator gets the first, the server (every thread of every process of its process group,
so also BentoML's and MLServer's worker processes) the second, and both are given their
whole CPU set back afterwards. On a 2-core machine this means the pinned figures measure
a server on **one** core with the load generator on the other: unlike the unpinned rounds,
where the server may use both cores and shares them with the generator, the two never
compete for a core here (the machine's other programs still run on both). A server is
thus expected to answer fewer requests/s pinned than unpinned when its work spreads over
two cores (a batching thread, a separate inference process), and a generator that were
the bottleneck would show as wrk answering clearly more than the Python generator on
the same pinned server. With a single usable CPU nothing is pinned (``"pinned": null``).

``wrk_post.lua`` posts the server's own request bodies round-robin (one a line in a
file) and prints the requests, errors and latency percentiles; wrk's requests/s is
requests over its measured seconds. wrk's latency is that of a closed loop too (no
coordinated-omission correction), like the Python generator's, so the two compare.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "wrk_post.lua"
WRK = "/usr/bin/wrk"

__all__ = ["available", "cpus_for_pinning", "pinned", "run_wrk", "wrk_version"]


def available() -> bool:
    """Whether ``wrk`` can be run here."""
    return Path(WRK).exists() or shutil.which("wrk") is not None


def wrk_version() -> str:
    """wrk's version line (``wrk debian/4.1.0-3+b2 [epoll] ...``: the first two words)."""
    probe = subprocess.run([_wrk(), "--version"], capture_output=True, text=True)
    words = (probe.stdout or probe.stderr).split()
    return " ".join(words[:2])


def cpus_for_pinning() -> tuple[int, int] | None:
    """(the load generator's CPU, the server's CPU), or ``None`` with one usable CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def _tasks(pids: list[int]) -> list[int]:
    """Every thread id of ``pids``."""
    out: list[int] = []
    for pid in pids:
        with contextlib.suppress(OSError):
            out.extend(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    return out


def group_pids(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` (a server started in a session of its own)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:  # state, ppid, pgrp
            pids.append(int(entry))
    return pids


def _set(tasks: list[int], cpus: set[int]) -> None:
    for task in tasks:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(task, cpus)


@contextlib.contextmanager
def pinned(pids: list[int], cpu: int) -> Iterator[None]:
    """Every thread of ``pids`` on ``cpu`` inside the block, on this process's CPU set
    after it."""
    whole = os.sched_getaffinity(0)
    _set(_tasks(pids), {cpu})
    try:
        yield
    finally:
        _set(_tasks(pids), whole)


def _wrk() -> str:
    return WRK if Path(WRK).exists() else shutil.which("wrk") or "wrk"


def run_wrk(
    url: str, bodies: list[bytes], concurrency: int, duration_s: float, cpu: int | None, tmp: Path
) -> dict[str, Any]:
    """One wrk run (one thread, ``concurrency`` connections) against ``url``, pinned to
    ``cpu`` (``None``: not pinned): requests/s, latency percentiles (ms), errors."""
    body_file = tmp / f"wrk-bodies-{abs(hash(url)) % 10**8}.txt"
    body_file.write_bytes(b"\n".join(b.replace(b"\n", b" ") for b in bodies) + b"\n")
    seconds = max(1, round(duration_s))
    cmd = [_wrk(), "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s"]
    cmd += ["-s", str(LUA), url]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    load = os.getloadavg()[0]
    env = os.environ | {"WRK_BODIES": str(body_file)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")]
    if done.returncode != 0 or not lines:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        return {"qps": 0.0, "error": " / ".join(tail) or f"wrk exited {done.returncode}"}
    figures: dict[str, Any] = json.loads(lines[-1].removeprefix("WRK_JSON "))
    for key in ("qps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"):
        figures[key] = round(figures[key], 3)
    return figures | {"load1": load}


def cross_check(
    targets: dict[str, tuple[str, list[bytes], int]],
    concurrencies: list[int],
    duration_s: float,
    python_generator: Callable[[str, list[bytes], int], dict[str, Any]],
    tmp: Path,
) -> dict[str, Any]:
    """For each target (name: (URL, bodies, process group id)) and concurrency, wrk and
    then ``python_generator`` (URL, bodies, concurrency), both pinned as the module says;
    each pair with wrk's requests/s over the Python generator's."""
    cpus = cpus_for_pinning()
    out: dict[str, Any] = {
        "wrk": wrk_version(),
        "pinned": None if cpus is None else {"load_generator_cpu": cpus[0], "server_cpu": cpus[1]},
        "threads": 1,
        "duration_s": max(1, round(duration_s)),
    }
    me = [os.getpid()]
    for name, (url, bodies, pgid) in targets.items():
        server = group_pids(pgid)
        for concurrency in concurrencies:
            with contextlib.ExitStack() as stack:
                if cpus is not None:
                    stack.enter_context(pinned(server, cpus[1]))
                wrk = run_wrk(url, bodies, concurrency, duration_s, cpus and cpus[0], tmp)
                print(f"wrk {url} c={concurrency}: {wrk}", file=sys.stderr)
                if cpus is not None:
                    stack.enter_context(pinned(me, cpus[0]))
                python = python_generator(url, bodies, concurrency)
            ratio = round(wrk["qps"] / python["qps"], 3) if python.get("qps") else None
            out[f"{name}_c{concurrency}"] = {
                "wrk": wrk,
                "python": python,
                "wrk_qps_over_python": ratio,
            }
    return out
