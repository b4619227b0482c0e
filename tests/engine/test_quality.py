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
