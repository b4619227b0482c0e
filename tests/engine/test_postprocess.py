"""--max-size, --strength and --preserve-color arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.engine import postprocess as pp


def _ycc(rgb):
    return rgb.astype(np.float64) @ pp._TO_YCC.T.astype(np.float64)


def test_resize_keeps_alpha_in_step():
    rgb = np.zeros((40, 80, 3), np.uint8)
    alpha = np.full((40, 80), 200, np.uint8)
    out, a = pp.resize(rgb, (20, 10), alpha)
    assert out.shape == (10, 20, 3) and a.shape == (10, 20) and int(a.mean()) == 200


def test_blend_endpoints_and_midpoint():
    o = np.full((2, 3, 3), 100, np.uint8)
    s = np.full((2, 3, 3), 200, np.uint8)
    assert np.array_equal(pp.blend(o, s, 1.0), s)
    assert np.array_equal(pp.blend(o, s, 0.0), o)
    assert np.all(pp.blend(o, s, 0.25) == 125)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(StyleEngineError, match="strength"):
            pp.blend(o, s, bad)


def test_preserve_color_takes_luma_from_style_and_chroma_from_original():
    rng = np.random.default_rng(0)
    # mid-range colours: luma/chroma recombination stays inside the RGB gamut (no clipping)
    orig = rng.integers(100, 156, (8, 8, 3), dtype=np.uint8)
    sty = rng.integers(100, 156, (8, 8, 3), dtype=np.uint8)
    out = pp.preserve_color(orig, sty)
    y_out, y_sty, y_orig = _ycc(out), _ycc(sty), _ycc(orig)
    assert np.abs(y_out[..., 0] - y_sty[..., 0]).max() < 1.5
    assert np.abs(y_out[..., 1:] - y_orig[..., 1:]).max() < 1.5
    # a grey stylization of a colourful photo gets the photo's colours back
    grey = np.repeat(sty[..., :1], 3, axis=2)
    assert np.abs(_ycc(pp.preserve_color(orig, grey))[..., 1:] - y_orig[..., 1:]).max() < 1.5


def test_finish_applies_color_then_strength():
    o = np.full((1, 2, 2, 3), (200, 50, 50), np.uint8)
    s = np.full((1, 2, 2, 3), 128, np.uint8)
    out = pp.finish(o, s, strength=0.0, preserve_colors=True)
    assert np.array_equal(out, o)
    assert pp.finish(o, s).shape == o.shape
