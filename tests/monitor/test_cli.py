"""``ctloop monitor run|show|list`` and ``ctloop alerts list`` through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from tests.monitor.conftest import END, FEATURES, Project, make_rows

REPO = Path(__file__).resolve().parents[2]


def ctloop(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["CTLOOP_HOME"] = str(project.home)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "ctloop", *args],
        cwd=project.home.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_monitor_run_show_list_and_alerts_as_json(project: Project, tmp_path: Path) -> None:
    day = timedelta(days=1)
    window = make_rows(300, 21, shift=2.0)
    window["timestamp"] = [END - day + day * (i + 0.5) / len(window) for i in range(len(window))]
    window["prediction"] = project.model.predict(window[FEATURES])
    window.drop(columns=["label"]).to_parquet(tmp_path / "scored.parquet")

    run = json.loads(
        ctloop(
            project,
            "monitor",
            "run",
            "flights",
            "--window",
            "1d",
            "--end",
            END.isoformat(),
            "--data",
            str(tmp_path / "scored.parquet"),
            "--json",
        ).stdout
    )
    assert run["verdict"] == "drift" and run["drifted_features"][0] == "signal"
    assert run["window"]["rows"] == 300 and len(run["alerts"]) == 1

    page = tmp_path / "report.html"
    shown = json.loads(
        ctloop(project, "monitor", "show", "latest", "--html", str(page), "--json").stdout
    )
    assert shown["verdict"] == "drift" and shown["model_artifact_id"] == project.model_artifact_id
    assert "signal" in page.read_text() and "<svg" in page.read_text()

    listed = json.loads(ctloop(project, "monitor", "list", "flights", "--json").stdout)
    assert [row["report"] for row in listed] == [run["report"]]

    alerts = json.loads(ctloop(project, "alerts", "list", "--json").stdout)
    assert [a["id"] for a in alerts] == run["alerts"]
    assert alerts[0]["report_artifact_id"] == run["report"]
    assert alerts[0]["delivery"]["log"]["status"] == "sent"
