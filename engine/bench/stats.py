"""Latency statistics: percentiles by linear interpolation (numpy's default), and the derived rates."""

from __future__ import annotations

import math
from typing import Sequence

PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (numpy's 'linear')."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(times_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99, mean, min, max and standard deviation of per-iteration times in milliseconds."""
    n = len(times_ms)
    mean = sum(times_ms) / n
    var = sum((t - mean) ** 2 for t in times_ms) / (n - 1) if n > 1 else 0.0
    out = {f"p{q}": percentile(times_ms, q) for q in PERCENTILES}
    out.update(mean=mean, min=min(times_ms), max=max(times_ms), std=math.sqrt(var), n=n)
    return out


def rates(latency_ms: float, *, batch: int, height: int, width: int, macs_per_pixel: float | None) -> dict[str, float | None]:
    """Frames/s, megapixels/s and achieved TFLOP/s (2 FLOP per MAC) for one batch taking `latency_ms`."""
    seconds = latency_ms / 1000.0
    frames = batch / seconds if seconds > 0 else math.inf
    pixels = frames * height * width
    tflops = 2.0 * macs_per_pixel * pixels / 1e12 if macs_per_pixel else None
    return {"fps": frames, "mpix_per_s": pixels / 1e6, "tflops": tflops}
