"""Alerts: de-duplication and cooldown, the file sink, and a webhook receiver that is
down and then up (the alert is delivered later, not lost)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctloop.config import Settings
from ctloop.monitor import MonitorReport, deliver_pending
from ctloop.monitor._alerts import raise_alerts
from ctloop.store.workspace import Workspace


def drift_report(*features: str) -> MonitorReport:
    columns = [
        {
            "column": f,
            "drifted": True,
            "test": "psi",
            "statistic": 0.5,
            "p_value": None,
            "threshold": 0.2,
        }
        for f in features
    ]
    return MonitorReport(
        "flights", 1, "a1", "drift", {"spec": "1d", "rows": 500}, skew={"columns": columns}
    )


def configure(tmp_path: Path, alerts: dict[str, Any]) -> tuple[Workspace, Settings]:
    (tmp_path / "ctloop.yaml").write_text(yaml.safe_dump({"alerts": alerts}))
    return Workspace.in_memory(tmp_path / "artifacts"), Settings.load(tmp_path)


class Receiver:
    """A webhook receiver on 127.0.0.1 that records the JSON bodies it is sent."""

    def __init__(self, port: int) -> None:
        received = self.received = []  # type: list[dict[str, Any]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def receiver_port() -> Iterator[int]:
    yield free_port()


def test_one_drift_raises_one_alert_within_the_cooldown(home: Path, tmp_path: Path) -> None:
    workspace, settings = configure(
        tmp_path, {"incidents": False, "cooldown_s": 3600, "sinks": [{"type": "log"}]}
    )

    first = raise_alerts(workspace, drift_report("distance"), None, settings=settings)
    again = raise_alerts(workspace, drift_report("distance"), None, settings=settings)
    other = raise_alerts(workspace, drift_report("distance", "hour"), None, settings=settings)

    assert len(first) == 1 and first[0].delivery["log"]["status"] == "sent"
    assert again == ()
    assert [a.dedup_key for a in other] == ["flights:drift:distance,hour"]
    assert len(workspace.alerts.list(subject="flights")) == 2


def test_without_cooldown_every_report_alerts(home: Path, tmp_path: Path) -> None:
    workspace, settings = configure(tmp_path, {"incidents": False, "cooldown_s": 0, "sinks": []})
    for _ in range(3):
        raise_alerts(workspace, drift_report("distance"), None, settings=settings)
    assert len(workspace.alerts.list()) == 3


def test_file_sink_writes_json_lines(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    workspace, settings = configure(
        tmp_path, {"incidents": False, "sinks": [{"type": "file", "path": str(path)}]}
    )
    raise_alerts(workspace, drift_report("distance"), None, settings=settings)
    raise_alerts(workspace, drift_report("carrier"), None, settings=settings)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["dedup_key"] for line in lines] == [
        "flights:drift:distance",
        "flights:drift:carrier",
    ]
    assert lines[0]["details"]["features"]["distance"]["training"]["statistic"] == 0.5


def test_webhook_down_then_up_delivers_later(
    home: Path, tmp_path: Path, receiver_port: int
) -> None:
    url = f"http://127.0.0.1:{receiver_port}/hook"
    workspace, settings = configure(
        tmp_path,
        {
            "backoff_s": 60,
            "sinks": [{"type": "webhook", "url": url, "timeout_s": 2}, {"type": "log"}],
        },
    )
    (alert,) = raise_alerts(workspace, drift_report("distance"), None, settings=settings)
    assert alert.delivery["webhook"]["status"] == "pending"
    assert alert.delivery["webhook"]["attempts"] == 1
    assert alert.delivery["log"]["status"] == "sent"

    receiver = Receiver(receiver_port)
    try:
        assert deliver_pending(workspace, settings=settings) == []  # backoff not over yet
        later = datetime.now(UTC) + timedelta(minutes=2)
        (retried,) = deliver_pending(workspace, settings=settings, now=later)
        assert deliver_pending(workspace, settings=settings, now=later + timedelta(hours=1)) == []
    finally:
        receiver.stop()

    assert retried.delivery["webhook"] | {"updated_at": None} == {
        "status": "sent",
        "attempts": 2,
        "last_error": None,
        "updated_at": None,
    }
    assert [body["id"] for body in receiver.received] == [alert.id]
    assert receiver.received[0]["cause"] == alert.cause


def test_webhook_gives_up_after_max_attempts(
    home: Path, tmp_path: Path, receiver_port: int
) -> None:
    url = f"http://127.0.0.1:{receiver_port}/hook"
    workspace, settings = configure(
        tmp_path, {"max_attempts": 2, "backoff_s": 1, "sinks": [{"type": "webhook", "url": url}]}
    )
    raise_alerts(workspace, drift_report("distance"), None, settings=settings)
    (retried,) = deliver_pending(
        workspace, settings=settings, now=datetime.now(UTC) + timedelta(hours=1)
    )
    assert retried.delivery["webhook"]["status"] == "failed"
    assert "cannot be reached" in retried.delivery["webhook"]["last_error"]
