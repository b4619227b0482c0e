"""`--temporal`: flow-guided blending of each stylized frame with the previous output (per-stream state).

For frame t with input I_t and per-frame stylization S_t:

    flow   = DIS(grey(I_t) -> grey(I_{t-1})) on frames downscaled to `flow_size` long side (backward map)
    W      = warp(O_{t-1}, flow)                     previous *output* moved onto frame t
    M      = forward-backward consistent AND |grey(I_t) - warp(grey(I_{t-1}))| small   (0..1, soft edges)
             (no motion-boundary test by default: see TemporalConfig.motion_boundaries)
    D      = W - S_t,   L = Gaussian(D, low_sigma)   (the coarse band of the difference: colour and shading)
    O_t    = S_t + M * (blend * D + clip((low_blend - blend) * L, +-low_max_step))
           (= blend * (D - L) + low_blend * L where the clip does not bite; blend 0.5, low_blend 0.9, 4 levels)

Style networks flicker in both bands, but smoothing the coarse one costs few brush strokes, so it is smoothed
harder (low_blend == blend is a single-band blend). Static and well-tracked regions keep their strokes from
frame to frame, while occluded, disoccluded or badly tracked pixels fall back to the fresh stylization. On a scene cut (the flow cannot
explain the change: high flow-compensated residual or few reliable pixels) the state resets and O_t = S_t.

Flow runs only on the small grey *input* frames, so its cost does not depend on the network and it can
run before inference finishes. A `TemporalStabilizer` is the per-stream state object: one per video
stream, frames in display order. It never changes frame count, size or timing: it maps one stylized
frame to one stylized frame.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from styleengine.core.errors import StyleEngineError

from . import opticalflow as of
from .video.filters import FrameFilter, FrameMeta


@dataclass(frozen=True)
class TemporalConfig:
    # Weight of the warped previous output where the flow is reliable, in the fine band (brush strokes; 0 = off).
    # Higher values cut more flicker but average strokes away (style distance +80% at 0.7 on Big Buck Bunny).
    blend: float = 0.5
    # Its weight in the coarse band: the difference low-passed with a Gaussian of low_sigma px at the output's
    # resolution (stroke-sized detail stays in the fine band). Against the single-band 0.5 on the shared clips
    # (benchmarks/results/flicker_bands.md, seven built-ins): warping error 0.19-0.25x of per-frame instead of
    # 0.29-0.33x on cars_432p, 0.29-0.64x instead of 0.42-0.68x on Big Buck Bunny, style change -5.5 to +4.3
    # points. Smaller sigmas cut more flicker and more strokes (1, 1.25, 1.5, 2 and 3 tried; 1.5 is the middle).
    low_blend: float = 0.9
    low_sigma: float = 1.5
    # The most (0-255 levels) the coarse band's extra smoothing, beyond `blend`, moves a pixel per frame. Where
    # the flow is a little off but passes the checks, 0.9 unbounded drags colour along with moving shapes (a dark
    # smear across Big Buck Bunny's belly, seen side by side); at 4 the smear is gone and most of the cut stays
    # (0.29-0.64x there, against 0.28-0.63x unbounded).
    low_max_step: float = 4.0
    # Flow runs on input frames downscaled so the long side is at most this. Flow quality decides whether
    # blending helps at all: misaligned warps smear strokes (more flicker and blur, measured), and DIS
    # ultrafast at 1/4 scale was measurably worse than no blending on the sample clip (benchmarks/flicker.py).
    flow_size: int = 480
    flow_preset: str = "medium"  # OpenCV DIS preset: ultrafast | fast | medium (speed vs alignment)
    # Also distrust steep flow gradients (Ruder/Lai's motion-boundary test, which the flicker meter applies). On
    # DIS flow it flags smooth non-rigid motion (a deforming body, swaying grass) as boundaries: on Big Buck
    # Bunny 82% of the pixels the stabilizer left to the fresh frame while the meter trusted them failed this
    # test alone, and they carried about half of the remaining flicker. Occlusions at real boundaries already
    # fail the forward-backward and photometric tests. Off, against on (seven built-ins,
    # benchmarks/results/flicker_round19.md): warping error 0.28-0.59x of per-frame instead of 0.33-0.68x on Big
    # Buck Bunny, 0.08-0.14x instead of 0.17-0.24x on cars_432p, style change +2 to +10 points; at blend 0.45
    # it flickers less than the test at 0.5 with no more style change on Big Buck Bunny.
    motion_boundaries: bool = False
    recursive: bool = True  # blend with the previous *output* (stronger) or the previous stylized frame
    photometric_threshold: float = 0.08  # per-pixel |grey diff| (0-1) after warping above which a pixel is untrusted
    cut_residual: float = 0.08  # mean flow-compensated grey change (0-1) that counts as a scene cut
    cut_min_reliable: float = 0.05  # fewer reliable pixels than this fraction also counts as a cut (motion
    # boundaries of busy traffic alone brought the fraction down to 0.17 on cars_432p.mp4 without a cut)

    def __post_init__(self) -> None:
        if not 0.0 <= self.blend < 1.0:
            raise StyleEngineError(f"temporal blend must be in [0, 1), got {self.blend}")
        if not 0.0 <= self.low_blend < 1.0:
            raise StyleEngineError(f"temporal low_blend must be in [0, 1), got {self.low_blend}")
        if not self.low_sigma > 0.0:
            raise StyleEngineError(f"temporal low_sigma must be above 0 pixels, got {self.low_sigma}")
        if not self.low_max_step >= 0.0:
            raise StyleEngineError(f"temporal low_max_step must be at least 0 levels, got {self.low_max_step}")
        if not 16 <= self.flow_size:
            raise StyleEngineError(f"temporal flow_size must be at least 16 pixels, got {self.flow_size}")
        if self.flow_preset not in of.DIS_PRESETS:
            raise StyleEngineError(f"unknown optical-flow preset {self.flow_preset!r}; choose one of: "
                                   f"{', '.join(of.DIS_PRESETS)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TemporalStats:
    frames: int = 0
    resets: int = 0  # scene cuts detected (the first frame is not counted)
    reliable_sum: float = 0.0  # sum over blended frames of the reliable-pixel fraction

    def to_dict(self) -> dict[str, Any]:
        blended = self.frames - 1 - self.resets
        return {"frames": self.frames, "scene_cuts": self.resets,
                "mean_reliable_fraction": round(self.reliable_sum / blended, 4) if blended > 0 else None}


@dataclass
class Motion:
    """analyze()'s per-frame result: the input motion from the previous frame, or why there is none."""

    field: of.FlowField | None  # None on the first frame, after a reset, or on a size change
    cut: bool = False  # the flow cannot explain the change: start over

    def fallback(self, size: tuple[int, int]) -> np.ndarray:
        """(H, W) bool at size=(W, H): the pixels apply() leaves (mostly) as the fresh stylization, where the
        flow is not reliable (FlowField.reliable_at); every pixel on a first frame or a cut."""
        if self.field is None or self.cut:
            return np.ones((size[1], size[0]), bool)
        return ~self.field.reliable_at(size)


class TemporalStabilizer(FrameFilter):
    """Per-stream state, a FrameFilter for the streaming pipeline (engine/video/filters.py):

    - analyze(source, meta) runs on the input side (decode thread, overlapping inference): optical flow
      between the previous and current small grey input frames, the consistency mask and the cut test;
    - apply(source, stylized, meta) runs after inference: blends with the warped previous output.

    Input-side state (previous grey frame, DIS scratch) and output-side state (previous output) are kept
    apart, as the two calls may run on different threads. Outside the pipeline,
    `out = stab.process(input_frame, stylized_frame)` (or `stab(...)`) does both, frames in display order.
    """

    def __init__(self, config: TemporalConfig | None = None, **overrides: Any):
        self.config = TemporalConfig(**{**(config.to_dict() if config else {}), **overrides})
        self.counters = TemporalStats()
        self._dis = None
        self._prev_gray: np.ndarray | None = None  # input side
        self._prev_out: np.ndarray | None = None  # output side

    # ---------------------------------------------------------------- FrameFilter hooks
    def stats(self) -> dict[str, Any]:
        """Reported by the pipeline in its stats JSON: frames, scene cuts, mean reliable-pixel fraction."""
        return {**self.counters.to_dict(), "config": self.config.to_dict()}

    def reset(self) -> None:
        """Forget the previous frame (seek, reconnect, new clip). The next frame passes through unchanged."""
        self._prev_gray = None
        self._prev_out = None

    def analyze(self, source: np.ndarray, meta: FrameMeta | None = None) -> Motion:
        cfg = self.config
        gray = of.small_gray(source, of.scale_for(source.shape[1], source.shape[0], cfg.flow_size))
        prev, self._prev_gray = self._prev_gray, gray
        if cfg.blend == 0.0 or prev is None or prev.shape != gray.shape:
            return Motion(None)
        if self._dis is None:
            self._dis = of.make_dis(cfg.flow_preset)
        field_ = of.flow_between(self._dis, prev, gray, boundaries=cfg.motion_boundaries)
        # Photometric check on the small frames: lighting changes and flow errors the FB test misses.
        warped = of.warp(prev, field_.flow)
        field_.mask &= np.abs(gray.astype(np.int16) - warped.astype(np.int16)) <= cfg.photometric_threshold * 255.0
        cut = field_.residual > cfg.cut_residual or float(field_.mask.mean()) < cfg.cut_min_reliable
        return Motion(field_, cut)

    def apply(self, source: np.ndarray, stylized: np.ndarray, meta: FrameMeta | None = None) -> np.ndarray:
        if stylized.dtype != np.uint8 or stylized.ndim != 3 or stylized.shape[2] != 3:
            raise StyleEngineError(f"temporal: stylized frame must be uint8 (H, W, 3), "
                                   f"got {stylized.dtype} {stylized.shape}")
        motion = meta.context if meta is not None and isinstance(meta.context, Motion) else None
        if motion is None:  # called without analyze() (not through the pipeline)
            motion = self.analyze(source, meta)
        self.counters.frames += 1
        prev_out = self._prev_out
        self._prev_out = stylized
        if motion.field is None or prev_out is None or prev_out.shape != stylized.shape:
            return stylized
        if motion.cut:
            self.counters.resets += 1
            return stylized
        self.counters.reliable_sum += float(motion.field.mask.mean())
        h, w = stylized.shape[:2]
        flow, mask = motion.field.at((w, h))
        cfg = self.config
        s = stylized.astype(np.float32)
        diff = of.warp(prev_out, flow).astype(np.float32) - s
        step = cfg.blend * diff  # blend * (D - L) + low_blend * L, with one blur
        if cfg.low_blend != cfg.blend:
            extra = (cfg.low_blend - cfg.blend) * of.gaussian_blur(diff, cfg.low_sigma)
            step += np.clip(extra, -cfg.low_max_step, cfg.low_max_step, out=extra)
        out = s + mask[..., None] * step
        out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        if self.config.recursive:
            self._prev_out = out
        return out

    # ---------------------------------------------------------------- direct use
    def process(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        return self.apply(frame, stylized, FrameMeta(0, 0.0, 0, self.analyze(frame)))

    __call__ = process

    def process_batch(self, frames: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) inputs and outputs in display order -> stabilized (N, H, W, 3)."""
        if len(frames) != len(stylized):
            raise StyleEngineError(f"temporal: {len(frames)} input frames but {len(stylized)} stylized frames")
        return np.stack([self.process(f, s) for f, s in zip(frames, stylized)]) if len(frames) else stylized


def temporal_filter(temporal: Any, blend: float | None = None):
    """The stabilizer for --temporal [--temporal-blend X]: None (off), or a per-stream factory (the default
    config, or the asked blend, validated now before any work). Anything else (a FrameFilter, a factory) is
    returned as it is."""
    if blend is not None:
        return functools.partial(TemporalStabilizer, TemporalConfig(blend=blend))
    if temporal is True:
        return TemporalStabilizer
    return temporal or None
