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


def test_border_band_sees_a_checkered_band_along_the_edges_only():
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.linspace(0, 255, 96)[None, :, None], 64, 0).repeat(3, 2)
    img = np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255)
    base = quality.border_band(img)
    assert 0.7 < base < 1.4  # the same noise everywhere
    banded = img.copy()
    checker = 40 * ((np.indices((6, 96)).sum(0) % 2) - 0.5)
    banded[:6] += checker[..., None]  # a checkered band along the top
    assert quality.border_band(banded) > 2 * base
    inner = img.copy()
    inner[30:36] += checker[..., None]  # the same band inside the picture is not a border band
    assert quality.border_band(inner) < base
