"""--temporal: flow-guided blending state (engine/temporal.py) on synthetic clips with known motion."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from styleengine.core.errors import StyleEngineError  # noqa: E402
from styleengine.engine import flicker  # noqa: E402
from styleengine.engine.temporal import TemporalConfig, TemporalStabilizer  # noqa: E402

from .quality_util import sample_photo, translated_clip  # noqa: E402


def _flickery(frames, sigma=14.0, seed=0):
    """A stand-in stylizer that follows the content but adds fresh noise every frame (pure flicker)."""
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]


def _coarse_flickery(frames, sigma_px=4.0, amplitude=14.0, seed=0):
    """A stand-in stylizer whose fresh per-frame noise is coarse (blotches of colour, as style networks' flicker
    often is), not pixel-fine."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        noise = cv2.GaussianBlur(rng.normal(0, 1, f.shape).astype(np.float32), (0, 0), sigma_px)
        out.append(np.clip(f + noise * (amplitude / noise.std()), 0, 255).astype(np.uint8))
    return out


def test_blending_cuts_flicker_on_a_moving_clip():
    frames = translated_clip(8, step=(2, 1))
    styl = _flickery(frames)
    stab = TemporalStabilizer(TemporalConfig(blend=0.7))
    out = [stab(f, s) for f, s in zip(frames, styl)]
    e_plain = flicker.warping_error(styl, frames)
    e_stab = flicker.warping_error(out, frames)
    assert e_stab < 0.5 * e_plain
    assert stab.counters.resets == 0 and stab.counters.frames == 8
    # It follows the motion instead of ghosting: close to the clean content, closer than the noisy frames.
    err_out = np.mean([np.abs(o.astype(float) - f)[8:-8, 8:-8].mean() for o, f in zip(out[3:], frames[3:])])
    err_in = np.mean([np.abs(s.astype(float) - f)[8:-8, 8:-8].mean() for s, f in zip(styl[3:], frames[3:])])
    assert err_out < 0.8 * err_in


def test_first_frame_and_scene_cut_pass_through_unchanged():
    a = translated_clip(3, step=(1, 1))
    other = np.ascontiguousarray(np.rot90(sample_photo(), 2)[:160, :208])  # unrelated picture: a cut
    frames = a + [other]
    styl = _flickery(frames, seed=3)
    stab = TemporalStabilizer()
    out = [stab(f, s) for f, s in zip(frames, styl)]
    assert np.array_equal(out[0], styl[0])
    assert not np.array_equal(out[1], styl[1])
    assert np.array_equal(out[3], styl[3])
    assert stab.counters.resets == 1


def test_motion_fallback_is_where_apply_keeps_the_fresh_frame():
    a = translated_clip(3, step=(1, 1))
    other = np.ascontiguousarray(np.rot90(sample_photo(), 2)[:160, :208])
    stab = TemporalStabilizer()
    first, moved, cut = (stab.analyze(f) for f in (a[0], a[1], other))
    size = (a[0].shape[1], a[0].shape[0])
    assert first.fallback(size).all() and cut.fallback(size).all()
    fb = moved.fallback(size)
    assert fb.shape == a[0].shape[:2] and 0 < fb.mean() < 0.2  # the border the content moved in from, mostly
    assert np.array_equal(fb, moved.field.at(size)[1] < 0.5)


def test_smooth_non_rigid_motion_is_trusted_unless_motion_boundaries_are_tested():
    from styleengine.engine import opticalflow

    photo = sample_photo()[:160, :208]
    h, w = photo.shape[:2]
    sway = np.zeros((h, w, 2), np.float32)
    sway[..., 0] = (2.0 * np.sin(2 * np.pi * np.arange(h) / 40))[:, None]
    frames = [photo, opticalflow.warp(photo, sway)]
    fallback = {}
    for boundaries in (False, True):
        stab = TemporalStabilizer(motion_boundaries=boundaries)
        motion = [stab.analyze(f) for f in frames][-1]
        fallback[boundaries] = motion.fallback((w, h)).mean()
    assert fallback[False] < 0.1 and fallback[True] > 2 * fallback[False]


def test_blend_zero_is_identity_and_reset_forgets():
    frames = translated_clip(3)
    styl = _flickery(frames)
    stab = TemporalStabilizer(TemporalConfig(blend=0.0))
    assert all(np.array_equal(stab(f, s), s) for f, s in zip(frames, styl))
    stab = TemporalStabilizer()
    stab(frames[0], styl[0])
    stab.reset()
    assert np.array_equal(stab(frames[1], styl[1]), styl[1])


def test_batch_keeps_frame_count_shape_and_dtype():
    frames = np.stack(translated_clip(5))
    styl = np.stack(_flickery(list(frames)))
    out = TemporalStabilizer().process_batch(frames, styl)
    assert out.shape == styl.shape and out.dtype == np.uint8
    with pytest.raises(StyleEngineError):
        TemporalStabilizer().process_batch(frames, styl[:3])


def test_stylized_frame_of_another_size_uses_rescaled_flow():
    frames = translated_clip(4, step=(4, 0))
    small = [np.ascontiguousarray(f[::2, ::2]) for f in frames]  # output at half resolution
    stab = TemporalStabilizer()
    out = [stab(f, s) for f, s in zip(frames, small)]
    assert all(o.shape == s.shape for o, s in zip(out, small))
    # Moving content: the warped previous output lines up with the new one (no ghost at 2 px/frame).
    assert np.abs(out[-1].astype(float) - small[-1])[4:-4, 4:-4].mean() < 3.0


@pytest.mark.parametrize("kw", [{"blend": 1.0}, {"blend": -0.1}, {"low_blend": 1.0}, {"low_blend": -0.1},
                                {"low_sigma": 0.0}, {"low_max_step": -1.0}, {"flow_size": 8}, {"flow_preset": "slow"}])
def test_bad_config_is_a_one_line_error(kw):
    with pytest.raises(StyleEngineError):
        TemporalConfig(**kw)


def test_temporal_in_the_streaming_pipeline_keeps_frame_count_and_timestamps(tmp_path):
    from styleengine.engine.video.pipeline import stylize_video

    from .video.helpers import InvertBackend, make_video, read_video, stylizer

    src = tmp_path / "in.mkv"
    times = make_video(src, n=10, w=64, h=48, durations_ms=(20, 40, 80), audio=None)  # VFR
    stab = TemporalStabilizer()
    res = stylize_video(src, tmp_path / "out.mp4", stylizer(InvertBackend()), temporal=stab)
    out = read_video(tmp_path / "out.mp4")
    assert res.frames == 10 and len(out["frames"]) == 10
    assert out["times"] == pytest.approx(times, abs=1e-3)
    assert stab.counters.frames == 10
    assert res.stats["filters"]["TemporalStabilizer"]["frames"] == 10


def test_non_recursive_mode_blends_with_the_previous_stylized_frame_only():
    from styleengine.engine.opticalflow import gaussian_blur

    still = [translated_clip(1)[0]] * 3  # static scene: flow ~0, every pixel reliable
    styl = _coarse_flickery(still, seed=9)
    stab = TemporalStabilizer(TemporalConfig(blend=0.5, recursive=False))
    out = [stab(f, s) for f, s in zip(still, styl)]
    # Two bands: S + 0.5 D + (0.9 - 0.5) L, with D = S_1 - S_2 and L its Gaussian low-pass (sigma 1.5 px), the
    # coarse band's extra step at most 4 levels.
    s, d = styl[2].astype(np.float32), styl[1].astype(np.float32) - styl[2]
    extra = 0.4 * gaussian_blur(d, 1.5)
    assert np.abs(extra).max() > 8  # the bound bites here
    expect = s + 0.5 * d + np.clip(extra, -4, 4)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(out[2] - expect)[inner].mean() < 1.0
    assert np.abs(out[2] - (s + 0.5 * d))[inner].max() <= 4 + 1.5  # the bound (plus flow and rounding)
    assert np.abs(out[2] - (s + 0.5 * d))[inner].mean() > 2  # not the single-band blend
    free = TemporalStabilizer(TemporalConfig(blend=0.5, recursive=False, low_max_step=255))
    out_free = [free(f, x) for f, x in zip(still, styl)]
    assert np.abs(out_free[2] - (s + 0.5 * d + extra))[inner].mean() < 1.0
    # low_blend == blend is the single-band blend.
    one = TemporalStabilizer(TemporalConfig(blend=0.5, low_blend=0.5, recursive=False))
    out1 = [one(f, x) for f, x in zip(still, styl)]
    assert np.abs(out1[2] - (s + 0.5 * d))[8:-8, 8:-8].mean() < 1.5


def test_coarse_flicker_is_smoothed_harder_and_fine_detail_kept_as_before():
    frames = translated_clip(8, step=(2, 1))

    def run(styl, **kw):
        stab = TemporalStabilizer(TemporalConfig(**kw))
        return [stab(f, s) for f, s in zip(frames, styl)]

    coarse = _coarse_flickery(frames, seed=4)
    e_two = flicker.warping_error(run(coarse), frames)
    e_one = flicker.warping_error(run(coarse, low_blend=0.5), frames)
    assert e_two < 0.6 * e_one
    # Pixel-fine fresh detail (stroke-like) is blended at `blend` in both: about as much of it survives.
    fine = _flickery(frames, seed=5)

    def fine_energy(outs):
        from styleengine.engine.opticalflow import gaussian_blur

        return np.mean([np.square(o.astype(np.float32) - gaussian_blur(o.astype(np.float32), 1.5))[8:-8, 8:-8].mean()
                        for o in outs[3:]])

    assert fine_energy(run(fine)) == pytest.approx(fine_energy(run(fine, low_blend=0.5)), rel=0.15)
