"""The demo's last step: the web UI on its workspace, its address printed, stopped
when the demo ends."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

from ctloop.cli.demo import _show_ui


def test_the_demo_prints_the_ui_address_and_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    console = Console(record=True, width=200)
    _show_ui(console, keep=False)
    found = re.search(
        r"web UI on the demo's workspace: (http://127\.0\.0\.1:\d+/)", console.export_text()
    )
    assert found is not None
    with pytest.raises(OSError):  # stopped: nothing answers there any more
        urllib.request.urlopen(f"{found.group(1)}runs", timeout=2)
