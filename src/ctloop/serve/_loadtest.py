"""Load tests for a prediction server: throughput, latency percentiles and error rate.

A closed-loop generator: ``concurrency`` workers share one keep-alive HTTP session and
each sends its next request as soon as the previous one is answered, for ``duration_s``
seconds (after ``warmup_s`` seconds whose requests are not counted) or for exactly
``requests`` requests. ``check_bounds`` turns the result into a release gate.

>>> config = LoadTestConfig("http://127.0.0.1:8080/predict", body=b'{"inputs": [[1.0]]}')
>>> result = run_load_test(config)                                     # doctest: +SKIP
>>> check_bounds(result, max_p99_ms=20, min_qps=1000)                 # doctest: +SKIP
['p99 latency 31.2 ms is above the bound of 20 ms']
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ctloop.errors import LoadTestError

if TYPE_CHECKING:
    import aiohttp
    import numpy as np

__all__ = [
    "LoadTestConfig",
    "LoadTestResult",
    "arun_load_test",
    "check_bounds",
    "load_bodies",
    "run_load_test",
    "target_url",
]

DEFAULT_PATH = "/predict"
DEFAULT_WARMUP_S = 1.0


def target_url(url: str, path: str | None = None) -> str:
    """The URL requests go to: ``url`` as given, its path replaced by ``path`` when given.

    A URL with no path at all targets the native prediction route, ``/predict``.

    >>> target_url("http://127.0.0.1:8080")
    'http://127.0.0.1:8080/predict'
    >>> target_url("http://127.0.0.1:8080/predict", path="/invocations")
    'http://127.0.0.1:8080/invocations'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(
            f"the load test target {url!r} is not an http(s) URL with a host; "
            "give one such as http://127.0.0.1:8080/predict"
        )
    new_path = path if path is not None else (parts.path if parts.path else DEFAULT_PATH)
    if not new_path.startswith("/"):
        new_path = "/" + new_path
    return urlunsplit((parts.scheme, parts.netloc, new_path, parts.query, parts.fragment))


def load_bodies(body: str | None = None, body_file: Path | None = None) -> tuple[bytes, ...]:
    """Request bodies from a JSON string or a file: one JSON document, or JSON lines.

    The bodies of a JSON-lines file are sent round-robin. No body gives ``()``.

    >>> load_bodies('{"inputs": [[1, 2]]}')
    (b'{"inputs": [[1, 2]]}',)
    """
    if body is not None and body_file is not None:
        raise LoadTestError("give the request body with --body or with --body-file, not both")
    if body is not None:
        _parse_json(body, "the --body value")
        return (body.encode(),)
    if body_file is None:
        return ()
    return _bodies_from_file(body_file)


def _bodies_from_file(path: Path) -> tuple[bytes, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadTestError(
            f"cannot read the body file {str(path)!r}: {exc.strerror or exc}; check the path"
        ) from exc
    try:
        json.loads(text)
        return (text.strip().encode(),)  # one document, possibly spread over lines
    except ValueError:
        pass
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        _parse_json(line, f"line {number} of the body file {str(path)!r}")
    if not lines:
        raise LoadTestError(f"the body file {str(path)!r} is empty; put one JSON body per line")
    return tuple(line.encode() for line in lines)


def _parse_json(text: str, what: str) -> None:
    try:
        json.loads(text)
    except ValueError as exc:
        raise LoadTestError(
            f"{what} is not valid JSON ({exc}); quote it for the shell, "
            """e.g. --body '{"inputs": [[1.0, 2.0]]}'"""
        ) from exc


@dataclass(frozen=True)
class LoadTestConfig:
    """What to send, how hard and for how long.

    ``requests`` (an exact count) replaces ``duration_s`` when given. ``warmup_s`` defaults
    to 1 s for timed tests and to 0 with ``requests``, so exactly that many are sent.

    >>> LoadTestConfig("http://127.0.0.1:8080/predict", concurrency=4, duration_s=5).method
    'POST'
    """

    url: str
    method: str = "POST"
    body: bytes | Sequence[bytes] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    concurrency: int = 16
    duration_s: float = 10.0
    warmup_s: float | None = None
    timeout_s: float = 10.0
    requests: int | None = None

    def __post_init__(self) -> None:
        target_url(self.url)  # fails early on a malformed URL
        checks = [
            (self.concurrency >= 1, f"concurrency must be at least 1, not {self.concurrency}"),
            (self.duration_s > 0, f"duration must be above 0 s, not {self.duration_s}"),
            (self.timeout_s > 0, f"timeout must be above 0 s, not {self.timeout_s}"),
            (
                self.warmup_s is None or self.warmup_s >= 0,
                f"warmup must be 0 s or more, not {self.warmup_s}",
            ),
            (
                self.requests is None or self.requests >= 1,
                f"requests must be at least 1, not {self.requests}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise LoadTestError(f"load test setting invalid: {message}")

    @property
    def bodies(self) -> tuple[bytes, ...]:
        """The bodies to send round-robin (``()`` for none)."""
        if self.body is None:
            return ()
        return (self.body,) if isinstance(self.body, bytes) else tuple(self.body)

    @property
    def warmup(self) -> float:
        """The warm-up in seconds, resolved from its default."""
        if self.warmup_s is not None:
            return self.warmup_s
        return 0.0 if self.requests is not None else DEFAULT_WARMUP_S

    @property
    def all_headers(self) -> dict[str, str]:
        """The request headers, with ``Content-Type: application/json`` unless overridden."""
        headers = dict(self.headers)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        return headers


@dataclass(frozen=True)
class LoadTestResult:
    """Figures over the measured requests (warm-up excluded); latencies in milliseconds.

    Errors are responses outside 2xx and requests that raised (timeouts, resets);
    ``status_counts`` counts every measured request by status code or exception kind.
    Latency covers every measured request, failed or not. ``qps`` is
    ``requests / duration_s``.

    >>> result.p50_ms <= result.p99_ms <= result.max_ms                 # doctest: +SKIP
    True
    """

    url: str
    method: str
    requests: int
    errors: int
    error_rate: float
    qps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    duration_s: float
    concurrency: int
    status_counts: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready values."""
        values = asdict(self)
        values["status_counts"] = dict(self.status_counts)
        return values


def check_bounds(
    result: LoadTestResult,
    max_p99_ms: float | None = None,
    min_qps: float | None = None,
    max_error_rate: float | None = None,
) -> list[str]:
    """One sentence per missed bound; an empty list when every given bound is met.

    ``max_error_rate`` is a fraction (0.01 = 1 %).

    >>> check_bounds(result, max_p99_ms=20)                              # doctest: +SKIP
    ['p99 latency 31.2 ms is above the bound of 20 ms']
    """
    missed = []
    if max_p99_ms is not None and result.p99_ms > max_p99_ms:
        missed.append(f"p99 latency {result.p99_ms:.1f} ms is above the bound of {max_p99_ms:g} ms")
    if min_qps is not None and result.qps < min_qps:
        missed.append(
            f"throughput {result.qps:.1f} requests/s is below the bound of {min_qps:g} requests/s"
        )
    if max_error_rate is not None and result.error_rate > max_error_rate:
        missed.append(
            f"error rate {result.error_rate:.2%} ({result.errors} of {result.requests} requests) "
            f"is above the bound of {max_error_rate:.2%}"
        )
    return missed


def run_load_test(config: LoadTestConfig) -> LoadTestResult:
    """Run a load test to its end (on uvloop when installed) and return its figures.

    Raises ``LoadTestError`` when the server cannot be reached.

    >>> run_load_test(LoadTestConfig("http://127.0.0.1:8080", requests=100)).requests  # doctest: +SKIP
    100
    """
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(arun_load_test(config))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def arun_load_test(config: LoadTestConfig) -> LoadTestResult:
    """``run_load_test`` for callers already inside an event loop."""
    import aiohttp

    url = target_url(config.url)
    await _check_reachable(url, config.timeout_s)
    connector = aiohttp.TCPConnector(limit=config.concurrency, limit_per_host=config.concurrency)
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=config.all_headers
    ) as session:
        load = _Load(config, url, session)
        await load.run()
    return load.result()


async def _check_reachable(url: str, timeout_s: float) -> None:
    """Open (and close) one TCP connection, so the server sees no extra request."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), timeout=timeout_s
        )
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise LoadTestError(
            f"cannot reach the server at {url} ({reason}); start the prediction server "
            "first, or fix the URL"
        ) from exc
    writer.close()
    await writer.wait_closed()


class _Latencies:
    """Latencies in seconds in a preallocated numpy array that doubles when full."""

    def __init__(self, capacity: int = 65536) -> None:
        import numpy as np

        self._values: np.ndarray = np.empty(capacity, dtype=np.float64)
        self.count = 0

    def add(self, seconds: float) -> None:
        if self.count == len(self._values):
            import numpy as np

            self._values = np.concatenate([self._values, np.empty_like(self._values)])
        self._values[self.count] = seconds
        self.count += 1

    def values(self) -> np.ndarray:
        return self._values[: self.count]


class _Load:
    """The workers of one load test and what they recorded."""

    def __init__(self, config: LoadTestConfig, url: str, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.url = url
        self.session = session
        self.bodies = config.bodies
        self.latencies = _Latencies()
        self.status_counts: Counter[str] = Counter()
        self.errors = 0
        self.sent = 0
        self.start = self.measure_start = self.deadline = self.last_end = 0.0

    async def run(self) -> None:
        self.start = time.perf_counter()
        self.measure_start = self.start + self.config.warmup
        self.deadline = self.measure_start + self.config.duration_s
        self.last_end = self.measure_start
        workers = [self._worker() for _ in range(self.config.concurrency)]
        await asyncio.gather(*workers)

    def _claim(self) -> bool:
        """Whether another request may start: the count is not reached, the time not up."""
        if self.config.requests is not None:
            return self.sent < self.config.requests
        return time.perf_counter() < self.deadline

    async def _worker(self) -> None:
        while self._claim():
            body = self.bodies[self.sent % len(self.bodies)] if self.bodies else None
            self.sent += 1
            began = time.perf_counter()
            outcome = await self._send(body)
            ended = time.perf_counter()
            if began >= self.measure_start:
                self._record(outcome, ended - began, ended)

    async def _send(self, body: bytes | None) -> str | int:
        """The response status, or the kind of exception the request raised."""
        import aiohttp

        try:
            async with self.session.request(self.config.method, self.url, data=body) as response:
                await response.read()
                return response.status
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            return type(exc).__name__

    def _record(self, outcome: str | int, seconds: float, ended: float) -> None:
        self.latencies.add(seconds)
        self.status_counts[str(outcome)] += 1
        if not (isinstance(outcome, int) and 200 <= outcome < 300):
            self.errors += 1
        self.last_end = max(self.last_end, ended)

    def result(self) -> LoadTestResult:
        import numpy as np

        count = self.latencies.count
        if count == 0:
            raise LoadTestError(
                f"no request to {self.url} was measured in {self.config.duration_s:g} s "
                f"after a {self.config.warmup:g} s warm-up; give a longer --duration"
            )
        millis = self.latencies.values() * 1000.0
        p50, p90, p95, p99 = (float(x) for x in np.percentile(millis, [50, 90, 95, 99]))
        duration = max(self.last_end - self.measure_start, 1e-9)
        return LoadTestResult(
            url=self.url,
            method=self.config.method,
            requests=count,
            errors=self.errors,
            error_rate=self.errors / count,
            qps=count / duration,
            p50_ms=p50,
            p90_ms=p90,
            p95_ms=p95,
            p99_ms=p99,
            max_ms=float(millis.max()),
            mean_ms=float(millis.mean()),
            duration_s=duration,
            concurrency=self.config.concurrency,
            status_counts=dict(sorted(self.status_counts.items())),
        )
