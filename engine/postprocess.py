"""Adjustments around the network: the --max-size resize (before), --preserve-color and --strength (after).

All work on (H, W, 3) or (N, H, W, 3) uint8 RGB arrays and return uint8 of the same shape.
"""

from __future__ import annotations

import numpy as np

from styleengine.core.errors import StyleEngineError

# BT.601 full-range RGB <-> YCbCr (what JPEG uses); only Y is taken from the stylized image.
_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_FROM_YCC = np.linalg.inv(_TO_YCC).astype(np.float32)


def check_strength(strength: float) -> float:
    strength = float(strength)
    if not (0.0 <= strength <= 1.0) or strength != strength:
        raise StyleEngineError(f"--strength must be between 0 and 1, got {strength}")
    return strength


def resize(rgb: np.ndarray, size: tuple[int, int], alpha: np.ndarray | None = None):
    """High-quality downscale (Lanczos) of an RGB image and its alpha to size=(W, H)."""
    from PIL import Image

    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb, alpha
    out = np.asarray(Image.fromarray(rgb, "RGB").resize(size, Image.LANCZOS, reducing_gap=3.0))
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha, "L").resize(size, Image.LANCZOS, reducing_gap=3.0))
    return out, alpha


def preserve_color(original: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """Luminance-only transfer (Gatys et al. 2016): stylized Y with the original's Cb and Cr."""
    if original.shape != stylized.shape:
        raise ValueError(f"shape mismatch {original.shape} vs {stylized.shape}")
    o = original.astype(np.float32) @ _TO_YCC.T
    s = stylized.astype(np.float32) @ _TO_YCC.T
    o[..., 0] = s[..., 0]
    rgb = o @ _FROM_YCC.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def blend(original: np.ndarray, stylized: np.ndarray, strength: float) -> np.ndarray:
    """strength 1 = fully stylized, 0 = the original; linear in between."""
    strength = check_strength(strength)
    if strength >= 1.0:
        return stylized
    if strength <= 0.0:
        return original.copy()
    out = original.astype(np.float32) * (1.0 - strength) + stylized.astype(np.float32) * strength
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def finish(original: np.ndarray, stylized: np.ndarray, *, strength: float = 1.0,
           preserve_colors: bool = False) -> np.ndarray:
    """Colour preservation first (on the full stylization), then the strength blend."""
    out = preserve_color(original, stylized) if preserve_colors else stylized
    return blend(original, out, strength)
