"""The flicker metric (Lai et al. warping error) on synthetic videos with known motion."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from styleengine.engine import flicker, opticalflow  # noqa: E402

from .quality_util import sample_photo, translated_clip  # noqa: E402


def test_translated_image_gives_near_zero_error_after_warping():
    frames = translated_clip(6, step=(3, 2))
    e = flicker.warping_error(frames)
    unwarped = np.mean([((frames[i].astype(np.float32) - frames[i - 1]) / 255.0) ** 2 for i in range(1, 6)])
    assert e < 2e-3
    assert e < unwarped / 20  # the flow really compensated the motion


def test_random_noise_frames_give_a_large_error():
    frames = translated_clip(5, step=(2, 1))
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, f.shape, dtype=np.uint8) for f in frames]
    e = flicker.warping_error(noise, frames)
    assert 0.12 < e < 0.21  # E[(a-b)^2] of independent uniforms on [0,1] is 1/6


def test_stylization_flicker_is_measured_against_input_motion():
    frames = translated_clip(5, step=(2, 1))
    rng = np.random.default_rng(1)
    # A "stylizer" that adds independent per-frame noise flickers; the same noise every frame moves wrongly.
    noisy = [np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8) for f in frames]
    e_floor = flicker.warping_error(frames)
    e_noisy = flicker.warping_error(noisy, frames)
    assert e_noisy > 5 * e_floor
    assert e_noisy == pytest.approx(2 * (12 / 255) ** 2, rel=0.35)


def test_meter_skips_the_first_frame_and_size_changes():
    meter = flicker.WarpErrorMeter()
    motion = flicker.InputMotion()
    frames = translated_clip(3, step=(1, 0))
    for f in frames:
        meter.update(f, motion.update(f))
    assert len(meter.errors) == 2
    assert flicker.WarpErrorMeter().value is None
    with pytest.raises(ValueError):
        flicker.warping_error(frames[:1])


def test_occlusion_mask_rejects_pixels_that_leave_the_frame_and_inconsistent_flow():
    h, w = 40, 60
    f = np.zeros((h, w, 2), np.float32)
    f[..., 0] = 5.0  # cur(x) = prev(x + 5): the right 5 columns look outside prev
    b = -f.copy()
    ok = opticalflow.consistent_mask(f, b)
    assert ok[:, : w - 6].all() and not ok[:, w - 4:].any()
    bad = opticalflow.consistent_mask(f, f)  # forward and backward agree in direction: inconsistent
    assert not bad.any()


def test_motion_boundary_test_flags_steep_but_consistent_flow_only_when_asked():
    h, w = 40, 60
    f = np.zeros((h, w, 2), np.float32)
    f[..., 0] = (0.5 * np.sin(2 * np.pi * np.arange(h) / 20))[:, None]  # rows sway: smooth non-rigid motion
    b = -f  # rows move horizontally only, so the backward flow at the moved point is exactly -f
    inner = (slice(None), slice(2, w - 2))
    assert opticalflow.consistent_mask(f, b, boundaries=False)[inner].all()
    with_test = opticalflow.consistent_mask(f, b)
    assert with_test[5, 2:-2].all() and with_test[15, 2:-2].all()  # the sway's turning points: flat flow
    assert not with_test[10, 2:-2].any()  # where it is steepest


def test_temporal_difference_proxy():
    still = [sample_photo()[:64, :64]] * 3
    assert flicker.temporal_difference(still) == 0.0
