"""Spectral peakiness: how "peaky" an image's high-frequency spectrum is. A periodic texture (the fine diagonal
stripes or 4-px grid an under-trained network paints everywhere, or a constant phase bias rounded to 8 bits on a
flat sky) concentrates energy in a few spikes of the mid band, so its 99.99th-percentile magnitude stands far above
the median; photos and real brush strokes spread it. numpy only: the phase-bias calibration (core.phase_bias), the
quality measures (engine.quality) and the trainer's peak loss share these definitions.
"""

from __future__ import annotations

import numpy as np

PEAK_BAND = (0.125, 0.375)  # cycles/pixel: the mid band, where painted textures live
PEAK_PERCENTILE = 99.99
RING_WIDTH = 0.01  # cycles/pixel


def luma(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an HxWx3 RGB image as float64 (an HxW image as it is)."""
    rgb = np.asarray(img, dtype=np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114 if rgb.ndim == 3 else rgb


def _relative_spectrum(img: np.ndarray):
    """The luminance FFT magnitude (Hann window) over the median of its ring (frequencies of the same radius),
    with the frequencies (cycles/px) of each bin and the mask of the mid band (rings with a median of 0 left out)."""
    y = luma(img)
    y = y - y.mean()
    h, w = y.shape
    y = y * np.outer(np.hanning(h), np.hanning(w))
    mag = np.abs(np.fft.fftshift(np.fft.fft2(y)))
    fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None] * np.ones((1, w))
    fx = np.fft.fftshift(np.fft.fftfreq(w))[None, :] * np.ones((h, 1))
    r = np.sqrt(fx ** 2 + fy ** 2)
    keep = (r >= PEAK_BAND[0]) & (r <= PEAK_BAND[1])
    rings = np.minimum((r / RING_WIDTH).astype(int), int(0.75 / RING_WIDTH))
    relative = np.zeros_like(mag)
    for ring in np.unique(rings[keep]):
        sel = keep & (rings == ring)
        med = float(np.median(mag[sel]))
        if med > 0:
            relative[sel] = mag[sel] / med
        else:
            keep &= ~sel
    return relative, fx, fy, keep


def spectral_peakiness(img: np.ndarray) -> float:
    """The 99.99th percentile, over the mid band, of the luminance FFT magnitude relative to the median of
    its ring (frequencies of the same radius; Hann window). Dividing by the ring median makes it a measure of
    spikes (periodic textures, such as the 4-px line grid an under-trained network's stride-2 convolutions and
    x2 upsamplings leave), not of the spectrum's slope (blur or sharpness). JPEG block edges of a source photo
    are spikes too, at k/8 cycles/px, which is why the ratio to the photo's own peakiness is what counts."""
    relative, _, _, band = _relative_spectrum(img)
    return float(np.percentile(relative[band], PEAK_PERCENTILE)) if band.any() else float("inf")


def grid_spike_fraction(img: np.ndarray, *, near: float = 0.8, tolerance: float = 0.006) -> float:
    """Of the mid-band spikes that set spectral_peakiness (within `near` of its value), the fraction that sit
    at multiples of 1/4 cycle/px on both axes (within `tolerance` cycles/px): the generator's 4-px grid, as
    against brush strokes, whose spikes fall anywhere. Tells which remedy a peaky output needs."""
    relative, fx, fy, band = _relative_spectrum(img)
    if not band.any():
        return 0.0
    spikes = band & (relative >= near * np.percentile(relative[band], PEAK_PERCENTILE))

    def on_grid(f: np.ndarray) -> np.ndarray:
        return np.abs(f * 4 - np.round(f * 4)) <= 4 * tolerance

    return float((spikes & on_grid(fx) & on_grid(fy)).sum() / spikes.sum())


def peakiness_ratio(output: np.ndarray, photo: np.ndarray) -> float:
    return spectral_peakiness(output) / spectral_peakiness(photo)
