"""The demo's prediction server: ``ctloop serve flights@champion`` in a child process on
a free loopback port, following the deployment (canary share) and the ``champion``
alias, with the prediction and feedback logs flushed every half second."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DemoServer"]


class DemoServer:
    """``ctloop serve flights@champion`` on ``url``; its output goes to ``serve.log`` in
    the current folder. :meth:`stop` ends it."""

    def __init__(self, console: Any) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(Path.cwd() / "serve.log", "wb")  # noqa: SIM115 (lives as long as the server)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ctloop",
                "serve",
                "flights@champion",
                "--port",
                str(port),
                "--poll-seconds",
                "0.5",
                "--log-flush-seconds",
                "0.5",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        console.print(f"   serving flights@champion at {self.url}")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {Path.cwd() / 'serve.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s")

    def version(self) -> int:
        """The champion version the server answers with now."""
        import urllib.request

        import orjson

        with urllib.request.urlopen(f"{self.url}/version", timeout=5) as response:
            return int(orjson.loads(response.read()).get("version") or 0)

    def routing(self) -> tuple[int, int | None, float]:
        """What the server routes to now: its primary version, its canary (or None) and
        the canary's share of the traffic (percent)."""
        import urllib.request

        import orjson

        with urllib.request.urlopen(f"{self.url}/version", timeout=5) as response:
            found = orjson.loads(response.read())
        canary = found.get("canary")
        traffic = float(found.get("canary_traffic") or 0.0) if canary is not None else 0.0
        return int(found.get("version") or 0), canary, traffic

    def wait_for_routing(
        self, primary: int, canary: int | None, traffic: float, timeout: float = 300.0
    ) -> None:
        """Wait until the server routes as deployed (it polls the store every half
        second, much later on a busy machine), so that a whole replayed week goes to the
        same versions every run; a server still behind after ``timeout`` is an error."""
        wanted = (primary, canary, traffic if canary is not None else 0.0)
        deadline = time.monotonic() + timeout
        while (found := self.routing()) != wanted:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(
                    f"the server routes to {_routing_text(found)}, not the deployed "
                    f"{_routing_text(wanted)}, after {timeout:.0f} s; "
                    f"see {Path.cwd() / 'serve.log'}"
                )
            time.sleep(0.2)

    def feedback(
        self, ids: Sequence[str], labels: Sequence[int], event_times: Sequence[str]
    ) -> None:
        """Send the labels of earlier requests, each with its event time."""
        from ctloop.demo._replay import send_feedback

        send_feedback(self.url, ids, labels, event_times)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then kill after 30 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _routing_text(routing: tuple[int, int | None, float]) -> str:
    """``v3`` or ``v3 with canary v4 on 30%``.

    >>> _routing_text((3, 4, 30.0))
    'v3 with canary v4 on 30%'
    """
    primary, canary, traffic = routing
    return f"v{primary}" + (f" with canary v{canary} on {traffic:g}%" if canary else "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
