"""Spectral peakiness (core/spectrum.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styleengine.core import spectrum


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
    assert spectrum.peakiness_ratio(photo, photo) == pytest.approx(1.0)
    assert spectrum.peakiness_ratio(textured, photo) > 10  # the stripe's spike stands far above its ring
    for radius in (1, 2, 4):  # a softer picture is not a periodic texture (the ring median falls with it)
        blurred = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(radius)))
        assert spectrum.peakiness_ratio(blurred, photo) < 1.35, radius
    lines = photo.astype(float)
    lines[::4] += 10  # the network artifact this catches: a faint line every 4 rows
    assert spectrum.peakiness_ratio(np.clip(lines, 0, 255).astype(np.uint8), photo) > 3


def test_grid_spike_fraction_tells_a_4px_grid_from_a_stroke_texture(photo):
    h, w = photo.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    grid = photo.astype(float)
    grid[::4] += 12
    grid[:, ::4] += 12  # the generator's 4-px grid: spikes at k/4 cycles/px on both axes
    strokes = photo.astype(float) * 0.8 + (20 * np.sin(2 * np.pi * (x + y) / 5.0))[..., None] + 20
    as_u8 = lambda a: np.clip(a, 0, 255).astype(np.uint8)  # noqa: E731
    assert spectrum.grid_spike_fraction(as_u8(grid)) > 0.8
    assert spectrum.grid_spike_fraction(as_u8(strokes)) < 0.1  # 0.2 cycles/px on both axes: off the grid
    assert spectrum.grid_spike_fraction(photo) < 0.5
