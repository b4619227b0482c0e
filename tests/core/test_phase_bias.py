import numpy as np
import pytest
import torch

from styleengine.core import phase_bias
from styleengine.core.network import ArchConfig, TransformerNet
from styleengine.core.phase_bias import calibrate
from styleengine.core.phase_pattern import mean_peakiness, phase_pattern, split_for_check
from tests.conftest import make_tiny_model


def _photos(n=4, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth photos (no 4-px structure of their own): low-resolution noise, upscaled.
    out = []
    for i in range(n):
        small = rng.integers(0, 256, (9 + i, 13, 3)).astype(np.float32)
        big = np.kron(small, np.ones((7, 7, 1), np.float32))[: 57 + i, :85]
        out.append(big.astype(np.uint8))
    return out


def test_phase_pattern_finds_a_planted_grid_and_is_zero_mean():
    grid = np.arange(48, dtype=np.float32).reshape(3, 4, 4)
    grid = grid - grid.mean(axis=(1, 2), keepdims=True)
    tiled = np.tile(grid.transpose(1, 2, 0), (5, 6, 1))  # 20 x 24 x 3
    # The second image's 9 x 13 is measured on its top-left 8 x 12; a different level does not leak in.
    got = phase_pattern([100.0 + tiled, 50.0 + tiled[:9, :13]])
    assert np.allclose(got, grid, atol=1e-4)
    # A flat image has none; the image's own level does not leak in.
    assert np.abs(phase_pattern([np.full((16, 16, 3), 77, np.uint8)])).max() == 0
    with pytest.raises(ValueError):
        phase_pattern([np.zeros((3, 3, 3), np.uint8)])


def test_calibrate_cancels_a_network_grid():
    model = make_tiny_model(phase_bias=False)
    with torch.no_grad():  # plant a strong frame-locked grid through the output layer's input
        planted = TransformerNet(ArchConfig("custom", (4, 8, 16), 1, phase_bias=True)).eval()
        planted.load_state_dict({**model.state_dict(), "phase_bias": torch.randn(1, 3, 1, 4, 1, 4) * 10})
    photos = _photos()
    measured = split_for_check(photos)[0]
    before = phase_pattern([planted(torch.from_numpy(p).permute(2, 0, 1)[None].float())[0].clamp(0, 255)
                            .permute(1, 2, 0).detach().numpy() for p in measured])
    fixed, info = calibrate(planted, photos)
    assert fixed.config.phase_bias and not fixed.training
    assert info.images == 3 and info.rms_before > 5 and info.rms_after < 0.05 * info.rms_before
    # Checked on the photo kept out of the measuring: it lowers the peakiness there, so it is kept.
    assert info.check_images == 1 and info.kept and info.peakiness_with < info.peakiness_without
    assert abs(info.rms_before - float(np.sqrt(np.mean(before ** 2)))) < 1e-3
    # The rest of the network is untouched; calibrating again changes (almost) nothing.
    for k, v in planted.state_dict().items():
        if k != "phase_bias":
            assert torch.equal(fixed.state_dict()[k], v)
    again, info2 = calibrate(fixed, photos)
    assert torch.allclose(again.phase_bias, fixed.phase_bias, atol=0.2)
    assert info2.rms_before == pytest.approx(info.rms_after, abs=1e-4)


def test_calibrate_adds_the_bias_to_a_network_without_one():
    model = make_tiny_model(phase_bias=False)
    fixed, info = calibrate(model, _photos(2), max_side=40)  # larger photos are measured downscaled
    assert fixed.config.phase_bias and not model.config.phase_bias
    assert info.rms_after <= info.rms_before
    x = torch.from_numpy(_photos(1)[0]).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        assert torch.allclose(fixed(x) - model(x), fixed.phase_bias.reshape(3, 4, 4).repeat(1, 15, 22)[:, :57, :85], atol=1e-3)


def test_split_for_check_keeps_every_third_photo_out_of_the_measuring():
    measure, check = split_for_check(list(range(24)))
    assert check == [2, 5, 8, 11, 14, 17, 20, 23] and len(measure) == 16 and not set(measure) & set(check)
    assert split_for_check([0, 1]) == ([0], [1])  # two: one each way
    assert split_for_check([7]) == ([7], [7]) and split_for_check([]) == ([], [])


def _soft_photo():
    """A float picture with almost nothing in the mid band (a blurred photo): where a rounded tone shows most."""
    from PIL import Image, ImageFilter

    from styleengine.engine.builtin_styles import sample_path

    img = Image.open(sample_path("photo")).convert("RGB").filter(ImageFilter.GaussianBlur(3))
    return np.asarray(img).astype(np.float64) + 0.3


def test_mean_peakiness_sees_a_rounded_sub_level_bias_and_a_grid():
    soft = _soft_photo()
    photo = np.rint(soft).astype(np.uint8)
    pattern = np.random.default_rng(0).uniform(-0.45, 0.45, (4, 4, 3))
    tiled = np.tile(pattern, (soft.shape[0] // 4 + 1, soft.shape[1] // 4 + 1, 1))[:soft.shape[0], :soft.shape[1]]

    def shipped(a):
        return lambda p: np.clip(np.rint(a), 0, 255).astype(np.uint8)

    plain = mean_peakiness(shipped(soft), [photo])
    assert plain == pytest.approx(1.0)
    # Under half a level everywhere, yet rounded to 8 bits it is a pure 4-px tone: far peakier than the photo.
    assert mean_peakiness(shipped(soft + tiled), [photo]) > 3 * plain
    # A network's grid of a few levels is peakier still; the bias that cancels it brings it back to the photo's.
    assert mean_peakiness(shipped(soft + 8 * tiled), [photo]) > mean_peakiness(shipped(soft + tiled), [photo])


def test_calibrate_leaves_the_bias_zero_where_the_check_says_it_does_not_help(monkeypatch):
    model = make_tiny_model(phase_bias=True)  # a random bias of up to 8 levels: a strong grid to cancel
    # With a check that scores a 4-px pattern as better, the cancelling bias loses and the model gets none.
    monkeypatch.setattr(phase_bias, "mean_peakiness",
                        lambda stylize, photos: -float(np.abs(phase_pattern([stylize(p) for p in photos])).mean()))
    bare, info = calibrate(model, _photos())
    assert not info.kept and info.peakiness_with > info.peakiness_without
    assert bare.config.phase_bias and bare.phase_bias.abs().max() == 0  # one architecture with the others
    for k, v in model.state_dict().items():
        if k != "phase_bias":
            assert torch.equal(bare.state_dict()[k], v)
    # The real check keeps it.
    monkeypatch.undo()
    fixed, info = calibrate(model, _photos())
    assert info.kept and fixed.phase_bias.abs().max() > 1
