"""benchmarks/gallery.py regenerates the README gallery; here it runs on a tiny network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def test_gallery_script_on_a_tiny_bundle(tiny_bundle, tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gallery.py"), "--styles", str(tiny_bundle),
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    row = Image.open(tmp_path / "gallery_tiny.jpg")
    inputs = [Image.open(ROOT / "benchmarks" / "gallery_inputs" / n) for n in
              ("kodim23.jpg", "kodim14.jpg", "chelsea.jpg", "bunny_frame.jpg")]
    height = max(i.height for i in inputs)
    # four images at full size (scaled to the tallest), no painting for a bundle without one
    assert row.height == height
    assert row.width == sum(round(i.width * height / i.height) for i in inputs) + 3 * 8
    assert Image.open(tmp_path / "gallery_grid.jpg").width == 4 * 256 + 3 * 8
    metrics = json.loads((tmp_path / "gallery.json").read_text())["styles"]["tiny"]
    assert set(metrics) == {"kodim23.jpg", "kodim14.jpg", "chelsea.jpg", "bunny_frame.jpg"}
    assert all(m["peakiness_x_photo"] > 0 and m["style_distance"] is None for m in metrics.values())
    mean = json.loads((tmp_path / "gallery.json").read_text())["mean"]["tiny"]
    # no painting: no style distance to average
    assert set(mean) == {"peakiness_x_photo", "grid_error", "content_distance", "border_band"}
    assert all(m["border_band"] > 0 and m["border_band_photo"] > 0 for m in metrics.values())
    assert all(m["grid_error"] >= 0 for m in metrics.values())
    assert abs(mean["peakiness_x_photo"] - sum(m["peakiness_x_photo"] for m in metrics.values()) / 4) < 1e-3

    # A rerun beside an earlier one: the earlier row above the new one.
    again = tmp_path / "again"
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gallery.py"), "--styles", str(tiny_bundle),
                          "--out", str(again), "--no-metrics", "--compare-with", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    both = Image.open(again / "compare_tiny.jpg")
    assert both.size == (row.width, 2 * row.height + 8)
