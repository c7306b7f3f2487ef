"""The HTML report in a real browser: headless Chromium lays out and paints its plots."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.data import compute_statistics, detect_drift, infer_schema, validate
from ctloop.data._report import render_report
from ctloop.data._report_svg import CURRENT_COLOUR, REFERENCE_COLOUR

pytestmark = pytest.mark.chromium

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The Chromium executable; the test fails (not skips) without one."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is not installed, so the report cannot be checked in a browser; run "
            "`make test` (scripts/install-test-deps.sh installs the Debian package 'chromium')"
        )
    return found


def write_report(folder: Path) -> tuple[Path, int]:
    """A drift report of a small real-looking table; returns its path and column count."""
    rng = np.random.default_rng(3)
    n = 2000
    reference = pd.DataFrame(
        {
            "distance": rng.lognormal(6.0, 0.6, n),
            "carrier": rng.choice(["UA", "AA", "B6", "DL", "EV"], n),
            "hour": rng.integers(5, 23, n),
        }
    )
    current = reference.assign(distance=reference.distance * 1.3)
    ref, cur = compute_statistics(reference), compute_statistics(current)
    page = render_report(
        title="Flights: January vs July",
        reference=ref,
        current=cur,
        drift=detect_drift(ref, cur),
        anomalies=validate(cur, infer_schema(ref)),
    )
    path = folder / "report.html"
    path.write_text(page, encoding="utf-8")
    return path, len(ref.columns)


def run_chromium(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium with a throw-away profile, no network services, ``args`` appended."""
    profile = folder / "profile"
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


class PlotMarks(HTMLParser):
    """For each ``<svg>`` in a DOM, its drawn shapes with their key attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: list[list[tuple[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.plots.append([])
        elif tag == "rect" and self.plots:
            self.plots[-1].append((tag, found.get("width") or ""))
        elif tag == "path" and self.plots:
            self.plots[-1].append((tag, found.get("d") or ""))

    handle_startendtag = handle_starttag


def png_pixels(path: Path) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG's pixels, decoded with zlib (rows × columns × channels)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    chunks, position = {}, 8
    while position < len(data):
        (size,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunks[kind] = chunks.get(kind, b"") + data[position + 8 : position + 8 + size]
        position += 12 + size
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format {depth}/{colour}"
    channels = 3 if colour == 2 else 4
    rows = _unfilter(zlib.decompress(chunks[b"IDAT"]), width * channels, height, channels)
    return rows.reshape(height, width, channels)


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> np.ndarray:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]
        line = np.frombuffer(row, dtype=np.uint8).astype(np.int32)
        if kind == 1:
            line = np.cumsum(line.reshape(-1, bpp), axis=0).ravel() % 256
        elif kind == 2:
            line = (line + previous) % 256
        elif kind in (3, 4):
            line = _sequential(line.tolist(), previous.tolist(), bpp, kind)
        out[y] = line
        previous = line.astype(np.int32)
    return out


def _sequential(line: list[int], up: list[int], bpp: int, kind: int) -> np.ndarray:
    """Average (3) and Paeth (4) rows, which depend on the byte to their left."""
    for i, value in enumerate(line):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 3:
            line[i] = (value + (left + up[i]) // 2) % 256
            continue
        corner = up[i - bpp] if i >= bpp else 0
        guess = left + up[i] - corner
        near = min((abs(guess - left), 0, left), (abs(guess - up[i]), 1, up[i]))
        near = min(near, (abs(guess - corner), 2, corner))
        line[i] = (value + near[2]) % 256
    return np.array(line, dtype=np.int32)


def rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as a tuple."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_chromium_renders_every_plot(tmp_path: Path) -> None:
    report, columns = write_report(tmp_path)
    dom = run_chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    marks = PlotMarks()
    marks.feed(dom)
    assert len(marks.plots) == columns
    for plot in marks.plots:
        assert any(tag == "path" or tag == "rect" for tag, _ in plot)
        assert all(value.strip() for _, value in plot), "a shape has no geometry"
        assert all(float(v) > 0 for tag, v in plot if tag == "rect")


def test_chromium_paints_both_colours(tmp_path: Path) -> None:
    report, _ = write_report(tmp_path)
    screenshot = tmp_path / "report.png"
    run_chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1200,2000", report.as_uri())
    print(f"screenshot: {screenshot}")
    assert screenshot.exists() and screenshot.stat().st_size > 0
    pixels = png_pixels(screenshot)[:, :, :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert tuple(pixels[0, 0]) == (245, 246, 248)  # the page background: decoded right
    colours = {tuple(int(c) for c in p) for p in np.unique(pixels.reshape(-1, 3), axis=0)}
    assert len(colours) > 1, "the screenshot is blank"
    assert rgb(REFERENCE_COLOUR) in colours and rgb(CURRENT_COLOUR) in colours
