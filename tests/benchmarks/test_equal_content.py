"""benchmarks/equal_content.py: the strength at which a style keeps as much of a photo as an earlier model did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("kodim23.jpg", "kodim14.jpg", "chelsea.jpg", "bunny_frame.jpg")


@pytest.fixture(scope="module")
def equal_content():
    return load_script("equal_content")  # it imports gallery.py beside it


def mean_abs(photo: np.ndarray, output: np.ndarray) -> float:
    return float(np.abs(output.astype(np.float64) - photo).mean())


def test_bisection_finds_the_strength_that_keeps_the_target_content(equal_content):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    output = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    full = mean_abs(photo, output)
    s, d = equal_content.strength_for_content(mean_abs, photo, output, 0.3 * full)
    # the mean absolute difference grows about linearly with the strength (uint8 rounding aside)
    assert abs(s - 0.3) < 0.01 and d <= 0.3 * full
    assert abs(d - 0.3 * full) < 0.01 * full
    # an output that already keeps more of the photo than the target stays at full strength
    assert equal_content.strength_for_content(mean_abs, photo, output, 2 * full) == (1.0, full)
    # a target of the photo itself: only strengths whose blend rounds back to the photo's uint8 values
    s, d = equal_content.strength_for_content(mean_abs, photo, output, 0.0)
    assert s < 0.005 and d == 0.0


def test_script_on_a_tiny_bundle(tiny_bundle, tmp_path):
    # Targets that pin the answer: no limit (full strength) on one image, the photo itself (0) on the others.
    before = {"styles": {"tiny": {n: {"content_distance": 1e9 if n == IMAGES[0] else 0.0, "style_distance": None}
                                  for n in IMAGES}}}
    (tmp_path / "before.json").write_text(json.dumps(before))
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "equal_content.py"), "--styles", str(tiny_bundle),
                          "--before", str(tmp_path / "before.json"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads((tmp_path / "out" / "equal_content.json").read_text())["styles"]["tiny"]
    assert got["images"][IMAGES[0]]["strength"] == 1.0 and got["images"][IMAGES[0]]["content_distance"] > 0
    assert all(got["images"][n]["strength"] < 0.005 and got["images"][n]["content_distance"] == 0.0
               for n in IMAGES[1:])
    assert 0.25 <= got["mean"]["strength"] < 0.255
    # no painting: no style distance, and the table says so
    assert got["images"][IMAGES[0]]["style_distance"] is None
    assert "| tiny | 0.25" in (tmp_path / "out" / "equal_content.md").read_text()
