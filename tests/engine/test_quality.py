"""Picture-quality measures (engine/quality.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styleengine.engine import quality


@pytest.fixture(scope="module")
def photo():
    from styleengine.engine.builtin_styles import sample_path

    return np.asarray(Image.open(sample_path("photo")).convert("RGB"))  # a 451x300 JPEG


def test_a_periodic_texture_is_peaky_and_blur_is_not(photo):
    from PIL import ImageFilter

    h, w = photo.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    stripes = (20 * np.sin(2 * np.pi * (x + y) / 5.0))[..., None]  # a faint fine diagonal stripe, 0.28 cycles/px
    textured = np.clip(photo.astype(float) * 0.8 + stripes + 20, 0, 255).astype(np.uint8)
    assert quality.peakiness_ratio(photo, photo) == pytest.approx(1.0)
    assert quality.peakiness_ratio(textured, photo) > 10  # the stripe's spike stands far above its ring
    for radius in (1, 2, 4):  # a softer picture is not a periodic texture (the ring median falls with it)
        blurred = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(radius)))
        assert quality.peakiness_ratio(blurred, photo) < 1.35, radius
    lines = photo.astype(float)
    lines[::4] += 10  # the network artifact this catches: a faint line every 4 rows
    assert quality.peakiness_ratio(np.clip(lines, 0, 255).astype(np.uint8), photo) > 3


def test_grid_spike_fraction_tells_a_4px_grid_from_a_stroke_texture(photo):
    h, w = photo.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    grid = photo.astype(float)
    grid[::4] += 12
    grid[:, ::4] += 12  # the generator's 4-px grid: spikes at k/4 cycles/px on both axes
    strokes = photo.astype(float) * 0.8 + (20 * np.sin(2 * np.pi * (x + y) / 5.0))[..., None] + 20
    as_u8 = lambda a: np.clip(a, 0, 255).astype(np.uint8)  # noqa: E731
    assert quality.grid_spike_fraction(as_u8(grid)) > 0.8
    assert quality.grid_spike_fraction(as_u8(strokes)) < 0.1  # 0.2 cycles/px on both axes: off the grid
    assert quality.grid_spike_fraction(photo) < 0.5


def test_style_and_content_distances(photo, assets):
    # (the painting from the test assets; the photo is the bundled sample)
    pytest.importorskip("torch")
    style = np.asarray(Image.open(assets / "train" / "style_starry_night.jpg").convert("RGB"))
    sd = quality.StyleDistance(style, style_size=None, max_side=None)
    assert sd.image(style) == pytest.approx(0.0, abs=1e-6)  # the painting itself
    assert sd.image(photo) > sd.image(style) and sd([photo, photo]) == pytest.approx(sd.image(photo))
    cd = quality.ContentDistance(max_side=None)
    assert cd(photo, photo) == pytest.approx(0.0, abs=1e-9)
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 25, photo.shape), 0, 255).astype(np.uint8)
    shuffled = photo[::-1, ::-1].copy()
    assert 0 < cd(photo, noisy) < cd(photo, shuffled)  # noise keeps the shapes, a flipped picture does not


def test_grid_error_is_zero_for_a_shift_equivariant_filter_and_sees_a_grid_fixed_to_the_frame():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 130, 3), dtype=np.uint8)

    def invert(im):
        return 255 - im

    def gridded(im):  # a 4-px column pattern anchored at the left edge, as a strided network can draw
        cols = np.where(np.arange(im.shape[1]) % 4 == 0, 40, 0)[None, :, None]
        return np.clip(im.astype(np.int32) + cols, 0, 255).astype(np.uint8)

    assert quality.grid_error(invert, photo, margin=8) == 0.0
    assert quality.grid_error(gridded, photo, margin=8) > 5.0
