"""The fixed 4-px pattern of a transformation network's output, measured with numpy alone (the torch-free
weight-blending path re-measures it; core.phase_bias uses it to calibrate), and the check that a bias cancelling
it earns its place.

The network's two stride-2 stages let its output depend on the pixel position mod 4. Much of that dependence
is a fixed pattern: averaged over a photo, the pixels of each of the 16 phases differ by 1-4 levels (photos
themselves: under 0.4). Tiny as it is, it is a pure tone at k/4 cycles/px, so it dominates the spectrum's
peaks and shows on flat skies.

A constant bias is not always the cure: a network that already cancels most of its pattern, content-dependently,
leaves a sub-level average, and that bias, rounded to 8 bits, paints a +-1-level 4-px tone on every flat area.
So a bias is measured on some photos and kept only where it lowers the outputs' spectral peakiness
(core.spectrum) on others.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence, TypeVar

import numpy as np
from PIL import Image

from .spectrum import peakiness_ratio

PHASE = 4  # two stride-2 stages
BIAS_SHAPE = (1, 3, 1, PHASE, 1, PHASE)  # the (3, 4, 4) pattern as it broadcasts over (N, C, rows/4, 4, cols/4, 4)
MAX_SIDE = 512  # measure at a size the network is used at, not at full camera resolution (speed)
CHECK_EVERY = 3  # every third photo checks the bias instead of measuring it

T = TypeVar("T")


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


def split_for_check(photos: Sequence[T]) -> tuple[list[T], list[T]]:
    """(photos to measure a phase bias on, photos to check it on): every CHECK_EVERY-th photo is kept out of the
    measuring (at least one where there are two); a single photo does both."""
    photos = list(photos)
    if len(photos) < 2:
        return photos, photos
    check_at = set(range(CHECK_EVERY - 1, len(photos), CHECK_EVERY)) or {1}
    return ([p for i, p in enumerate(photos) if i not in check_at],
            [p for i, p in enumerate(photos) if i in check_at])


def mean_peakiness(stylize: Callable[[np.ndarray], np.ndarray], photos: Sequence[np.ndarray]) -> float:
    """The mean, over photos, of the uint8 output's spectral peakiness over the photo's: what the bias check
    compares (`stylize`: uint8 HxWx3 -> uint8 HxWx3, rounded as shipped)."""
    return float(np.mean([peakiness_ratio(stylize(p), p) for p in photos]))
