"""The fixed 4-px pattern of a transformation network's output, measured with numpy alone (the torch-free
weight-blending path re-measures it; core.phase_bias uses it to calibrate).

The network's two stride-2 stages let its output depend on the pixel position mod 4. Much of that dependence
is a fixed pattern: averaged over a photo, the pixels of each of the 16 phases differ by 1-4 levels (photos
themselves: under 0.4). Tiny as it is, it is a pure tone at k/4 cycles/px, so it dominates the spectrum's
peaks and shows on flat skies.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from PIL import Image

PHASE = 4  # two stride-2 stages
BIAS_SHAPE = (1, 3, 1, PHASE, 1, PHASE)  # the (3, 4, 4) pattern as it broadcasts over (N, C, rows/4, 4, cols/4, 4)
MAX_SIDE = 512  # measure at a size the network is used at, not at full camera resolution (speed)


def phase_pattern(images: Iterable[np.ndarray]) -> np.ndarray:
    """The mean (3, 4, 4) pattern of HxWx3 images' phases: per channel, the mean of the pixels at each (row mod 4,
    col mod 4) minus the mean of all 16, weighted by pixel count. Phases count from the top-left pixel."""
    total, weight = np.zeros((3, PHASE, PHASE)), 0
    for img in images:
        img = np.asarray(img)
        h, w = (img.shape[0] // PHASE) * PHASE, (img.shape[1] // PHASE) * PHASE
        if h == 0 or w == 0:
            continue
        blocks = img[:h, :w].astype(np.float64).reshape(h // PHASE, PHASE, w // PHASE, PHASE, 3).mean(axis=(0, 2))
        blocks = blocks.transpose(2, 0, 1)
        total += (blocks - blocks.mean(axis=(1, 2), keepdims=True)) * (h * w)
        weight += h * w
    if weight == 0:
        raise ValueError("no image of at least 4x4 pixels to measure a phase pattern on")
    return (total / weight).astype(np.float32)


def downscale(img: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """An HxWx3 uint8 image with its long side brought down to max_side (Lanczos); smaller ones as they are."""
    h, w = img.shape[:2]
    if max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    size = (max(PHASE, round(w * s)), max(PHASE, round(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.LANCZOS))
