"""Flicker metric: the warping error of Lai et al. (ECCV 2018), and a style-strength measure to go with it.

Warping error of a video V (frames in [0, 1]) given the *input* video's optical flow:

    E_warp(V) = 1/(T-1) * sum_t  sum_x M_t(x) * |V_t(x) - warp(V_{t-1}, F_t)(x)|^2 / sum_x M_t(x)

F_t is the backward flow of the input (I_t(x) ~= I_{t-1}(x + F_t(x))) and M_t its forward-backward
consistency mask (opticalflow.consistent_mask, Lai's thresholds); the sum runs over pixels and channels
(N counts masked elements). If no pixel is reliable the whole frame is used, as in Lai's code.
Lai et al. use FlowNet2; here it is OpenCV's Farneback flow at the frames' full resolution, so it runs on
a CPU. The --temporal stabilizer uses a different estimator (DIS) on smaller frames, so the metric does not
simply reward agreeing with the stabilizer's own flow (measuring with the stabilizer's flow would).

Low flicker alone is not quality (a blurred copy of the input has the lowest), so it is always reported
with quality.StyleDistance: the Gram-matrix distance of the outputs to the style image in the loss network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from . import opticalflow as of

METER_FLOW_PRESET = "farneback"
METER_FLOW_SCALE = 1.0


@dataclass
class InputMotion:
    """Flow of the input video, computed once per frame and shared by every variant being measured."""

    flow_scale: float = METER_FLOW_SCALE
    preset: str = METER_FLOW_PRESET

    def __post_init__(self) -> None:
        self._dis = of.make_dis(self.preset)
        self._prev: np.ndarray | None = None

    def update(self, frame: np.ndarray) -> of.FlowField | None:
        """Feed the next input frame (uint8 RGB); returns the motion from the previous one (None for the first)."""
        gray = of.small_gray(frame, self.flow_scale)
        prev, self._prev = self._prev, gray
        if prev is None or prev.shape != gray.shape:
            return None
        return of.flow_between(self._dis, prev, gray)


def frame_warp_map(prev: np.ndarray, cur: np.ndarray, motion: of.FlowField) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the squared difference between `cur` and `prev` warped onto it (uint8 RGB frames, 0-1 scale,
    summed over channels), and the meter's mask (bool: the flow is reliable there)."""
    h, w = cur.shape[:2]
    warped = of.warp(prev, of.resize_flow(motion.flow, (w, h))).astype(np.float32) / 255.0
    return ((cur.astype(np.float32) / 255.0 - warped) ** 2).sum(-1), motion.reliable_at((w, h))


def frame_warp_error(prev: np.ndarray, cur: np.ndarray, motion: of.FlowField) -> float:
    """Masked mean squared difference between `cur` and `prev` warped onto it (uint8 RGB frames, 0-1 scale)."""
    return warp_error_of_map(*frame_warp_map(prev, cur, motion))


def warp_error_of_map(sq: np.ndarray, mask: np.ndarray) -> float:
    """One frame's E_warp term from frame_warp_map's output (the whole frame when the mask is empty, as Lai's)."""
    n = int(mask.sum())
    if n == 0:
        return float(sq.mean() / 3.0)
    return float(sq[mask].sum() / (3.0 * n))


@dataclass
class WarpErrorMeter:
    """Accumulates E_warp for one output video: call update(output_frame, motion) per frame in order."""

    errors: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._prev: np.ndarray | None = None

    def update(self, frame: np.ndarray, motion: of.FlowField | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Add the frame; returns its per-pixel map and mask (frame_warp_map), or None when nothing was measured."""
        terms = None
        if motion is not None and self._prev is not None and self._prev.shape == frame.shape:
            terms = frame_warp_map(self._prev, frame, motion)
            self.errors.append(warp_error_of_map(*terms))
        self._prev = frame
        return terms

    @property
    def value(self) -> float | None:
        return float(np.mean(self.errors)) if self.errors else None


def warping_error(outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray] | None = None, *,
                  flow_scale: float = METER_FLOW_SCALE, preset: str = METER_FLOW_PRESET) -> float:
    """E_warp of `outputs` using the flow of `inputs` (default: the outputs themselves, i.e. the input floor)."""
    inputs = outputs if inputs is None else inputs
    if len(inputs) != len(outputs):
        raise ValueError(f"{len(outputs)} output frames but {len(inputs)} input frames")
    if len(outputs) < 2:
        raise ValueError("the warping error needs at least 2 frames")
    motion = InputMotion(flow_scale, preset)
    meter = WarpErrorMeter()
    for i, o in zip(inputs, outputs):
        meter.update(o, motion.update(i))
    return float(meter.value)


def temporal_difference(frames: Iterable[np.ndarray]) -> float:
    """Flow-free proxy: mean |V_t - V_{t-1}| over frames and pixels (0-1). Useful next to E_warp as a sanity check."""
    total, n, prev = 0.0, 0, None
    for f in frames:
        g = f.astype(np.float32) / 255.0
        if prev is not None:
            total += float(np.abs(g - prev).mean())
            n += 1
        prev = g
    return total / n if n else 0.0
