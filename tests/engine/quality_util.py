"""Synthetic clips with known motion for the quality tests (temporal, flicker), cut from the bundled sample."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from styleengine.engine.builtin_styles import STYLES_DIR

SAMPLE = STYLES_DIR.parent / "samples" / "chelsea.jpg"


@lru_cache(maxsize=1)
def sample_photo() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(SAMPLE).convert("RGB"))


def translated_clip(n: int, step=(3, 2), size=(160, 208), origin=(20, 30)) -> list[np.ndarray]:
    """n crops of the sample photo, the window moving by `step` (dx, dy) pixels per frame."""
    img = sample_photo()
    h, w = size
    oy, ox = origin
    dx, dy = step
    out = []
    for t in range(n):
        y, x = oy + dy * t, ox + dx * t
        assert y + h <= img.shape[0] and x + w <= img.shape[1]
        out.append(np.ascontiguousarray(img[y:y + h, x:x + w]))
    return out
