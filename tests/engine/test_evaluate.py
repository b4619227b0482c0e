"""`styleengine eval flicker`: the variant table on synthetic motion, and the command end to end on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2")

from styleengine.engine.evaluate import fallback_line, fallback_split, measure  # noqa: E402

from .quality_util import translated_clip  # noqa: E402


def test_measure_reports_floor_per_frame_and_temporal_variants():
    frames = translated_clip(8, step=(2, 1))
    rng = np.random.default_rng(0)

    def flickery(batch):
        return np.clip(batch + rng.normal(0, 12, batch.shape), 0, 255).astype(np.uint8)

    rows = {r.name: r for r in measure(frames, flickery, blends=(0.5, 0.8), style_distance=lambda im: float(im.std()))}
    assert list(rows) == ["input", "per-frame", "temporal b=0.5", "temporal b=0.8"]
    assert rows["per-frame"].ratio_to_per_frame == pytest.approx(1.0)
    assert rows["input"].warp_error < 0.2 * rows["per-frame"].warp_error  # the floor
    assert rows["temporal b=0.8"].warp_error < rows["temporal b=0.5"].warp_error < 0.6 * rows["per-frame"].warp_error
    assert rows["temporal b=0.8"].style_change < 0  # smoother frames: lower std "style" here
    assert rows["temporal b=0.5"].extra["temporal_ms_per_frame"] > 0
    # With single_band, each blend also in both bands (the stabilizer before the coarse band was smoothed harder).
    rows = {r.name: r for r in measure(frames, flickery, blends=(0.5,), single_band=True)}
    assert list(rows) == ["input", "per-frame", "temporal b=0.5", "temporal b=0.5 one band"]
    assert rows["temporal b=0.5"].warp_error < rows["temporal b=0.5 one band"].warp_error


def test_measure_says_where_the_stabilizers_remaining_flicker_lies():
    frames = translated_clip(8, step=(2, 1))
    rng = np.random.default_rng(0)

    def flickery(batch):
        return np.clip(batch + rng.normal(0, 12, batch.shape), 0, 255).astype(np.uint8)

    rows = {r.name: r for r in measure(frames, flickery, blends=(0.5,))}
    extra = rows["temporal b=0.5"].extra
    # Pure translation: its own flow is reliable almost everywhere the meter's is, so it rarely falls back.
    assert 0 <= extra["fallback_pixels"] < 0.1
    assert 0 <= extra["error_on_fallback"] <= 1 and 0 <= extra["per_frame_error_on_fallback"] <= 1
    assert "fallback_pixels" not in rows["per-frame"].extra
    assert "falls back to the fresh frame on" in fallback_line(extra)
    assert fallback_line(rows["per-frame"].extra) is None


def test_fallback_split_shares():
    # rows: the stabilizer's output, per-frame, input; columns: on its fallback pixels, on all the meter's pixels
    sums = np.array([[1.0, 4.0], [2.0, 8.0], [3.0, 6.0], [10.0, 100.0]])
    assert fallback_split(sums) == {"fallback_pixels": 0.1, "error_on_fallback": 0.25,
                                    "per_frame_error_on_fallback": 0.25, "input_error_there_x_rest": 9.0}
    assert fallback_split(np.zeros((4, 2)))["fallback_pixels"] is None
    # A per-frame output with no error at all leaves its share undefined; the line still reads.
    extra = fallback_split(np.array([[1.0, 4.0], [0.0, 0.0], [3.0, 6.0], [10.0, 100.0]]))
    assert extra["per_frame_error_on_fallback"] is None
    assert "(of per-frame's: -)" in fallback_line(extra)


def test_eval_flicker_command_on_a_tiny_bundle(tiny_bundle, assets):
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from styleengine.cli import app
    from styleengine.engine.builtin_styles import STYLES_DIR

    clip = STYLES_DIR.parent / "samples" / "bunny_2s.mp4"
    ref = STYLES_DIR / "images" / "great_wave.jpg"
    res = CliRunner().invoke(app, ["eval", "flicker", str(clip), "--style", str(tiny_bundle), "--frames", "4",
                                   "--backend", "onnxruntime", "--blend", "0.7", "--max-size", "160",
                                   "--style-image", str(ref), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["frames"] == 4 and doc["size"] == [160, 90]
    assert [v["variant"] for v in doc["variants"]] == ["input", "per-frame", "temporal b=0.7"]
    assert all(v["warp_error"] is not None and v["style_distance"] > 0 for v in doc["variants"])
    bad = CliRunner().invoke(app, ["eval", "flicker", "nope.mp4", "--style", str(tiny_bundle)])
    assert bad.exit_code == 2 and "video not found" in bad.output


def test_style_reference_is_found_for_builtins_and_checkpoints_of_shipped_paintings(tmp_path):
    pytest.importorskip("torch")
    from styleengine.core.checkpoint import save_model
    from styleengine.engine.evaluate import style_image_for
    from tests.conftest import make_tiny_model

    assert style_image_for("starry_night").name == "starry_night.jpg"
    mine = save_model(tmp_path / "mine.pt", make_tiny_model(), style={"name": "x", "image": "great_wave.jpg"})
    other = save_model(tmp_path / "other.pt", make_tiny_model(), style={"name": "y", "image": "my_painting.jpg"})
    assert style_image_for(str(mine)).name == "great_wave.jpg"
    assert style_image_for(str(other)) is None and style_image_for("no_such_thing") is None
