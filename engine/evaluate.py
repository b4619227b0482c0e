"""`styleengine eval flicker VIDEO --style STYLE`: how much a style flickers, with and without --temporal.

One pass over the first `frames` frames of VIDEO (downscaled to `max_size`): the input's optical flow is
computed once (flicker.InputMotion) and every variant is measured against it:

    input          the video itself: the floor of the warping error (what motion + flow error alone give)
    per-frame      plain per-frame stylization
    temporal b=X   per-frame stylization through the --temporal stabilizer with blend X (one per `blends`)
    temporal b=X one band   (with `single_band`) the same blend in both bands (temporal.TemporalConfig), to
                   compare with the default's harder-smoothed coarse band

Each row has the warping error (Lai et al. 2018, flicker.py), its ratio to per-frame, and the style distance
(Gram distance to the style image, quality.StyleDistance) on a sample of frames with its change vs per-frame,
so a smoother-but-washed-out variant shows up as such. Also the stabilizer's own cost in ms per frame, and where
its remaining flicker lies: the share of the meter's pixels on which it fell back to the fresh stylization (its
own flow unreliable there), the share of its error, and of per-frame's, on those pixels, and how much larger the
input's own warping error is there than elsewhere (> 1: the meter's flow fails there too).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from styleengine.core.bundle import load_bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.shapes import fit_size

from .builtin_styles import PAINTINGS, get_builtin, style_image_path
from .flicker import InputMotion, WarpErrorMeter
from .postprocess import resize
from .quality import StyleDistance
from .stylizer import Stylizer
from .temporal import TemporalConfig, TemporalStabilizer
from .video.filters import FrameMeta
from .video.reader import VideoReader

DEFAULT_BLENDS = (0.3, 0.5, 0.7)
DEFAULT_FRAMES = 48
DEFAULT_MAX_SIZE = 640
STYLE_SAMPLES = 8  # frames used for the style distance (evenly spread)


@dataclass
class VariantResult:
    name: str
    warp_error: float | None
    style_distance: float | None = None
    ratio_to_per_frame: float | None = None
    style_change: float | None = None  # relative change of style distance vs per-frame (+0.05 = 5% farther)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        r = lambda v, n=6: None if v is None else round(float(v), n)  # noqa: E731
        return {"variant": self.name, "warp_error": r(self.warp_error, 7), "ratio_to_per_frame": r(self.ratio_to_per_frame, 4),
                "style_distance": r(self.style_distance, 5), "style_change": r(self.style_change, 4), **self.extra}


@dataclass
class FlickerReport:
    video: str
    style: str
    frames: int
    size: tuple[int, int]
    backend: str
    variants: list[VariantResult]
    style_image: str | None
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "style": self.style, "frames": self.frames, "size": list(self.size),
                "backend": self.backend, "style_image": self.style_image, "seconds": round(self.seconds, 2),
                "metric": "warping error, Lai et al. 2018 (masked MSE, RGB in [0,1]); flow of the input: OpenCV "
                          "Farneback at full resolution, forward-backward occlusion mask",
                "style_metric": "Gram distance to the style image in efficientnet-lite0 (relative, lower = closer)",
                "variants": [v.to_dict() for v in self.variants], "notes": self.notes}

    def table(self) -> str:
        lines = [f"{self.video}  style {self.style}  {self.frames} frames at {self.size[0]}x{self.size[1]}  "
                 f"backend {self.backend}",
                 f"{'variant':<16} {'warp error':>11} {'x per-frame':>11} {'style dist':>10} {'style chg':>9}"]
        for v in self.variants:
            f = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
            lines.append(f"{v.name:<16} {f(v.warp_error, '11.6f')} {f(v.ratio_to_per_frame, '11.3f')} "
                         f"{f(v.style_distance, '10.4f')} {f(v.style_change, '+9.1%')}")
        lines += [f"{v.name}: {line}" for v in self.variants if (line := fallback_line(v.extra))]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def fallback_line(extra: Mapping[str, Any]) -> str | None:
    """One sentence on where a stabilizer's remaining flicker lies (measure()'s fallback_split), or None."""
    if extra.get("fallback_pixels") is None or extra.get("error_on_fallback") is None:
        return None
    per_frame = extra.get("per_frame_error_on_fallback")
    line = (f"falls back to the fresh frame on {extra['fallback_pixels']:.1%} of the meter's pixels, which carry "
            f"{extra['error_on_fallback']:.0%} of its warping error (of per-frame's: "
            f"{'-' if per_frame is None else format(per_frame, '.0%')})")
    if extra.get("input_error_there_x_rest") is not None:
        line += f"; the input's own error there is {extra['input_error_there_x_rest']:.1f}x the rest's"
    return line


def read_frames(video: str | os.PathLike, frames: int, max_size: int | None) -> tuple[list[np.ndarray], float | None]:
    """The first `frames` RGB frames (downscaled so the long side <= max_size) and the frame rate."""
    path = Path(video)
    if not path.is_file():
        raise StyleEngineError(f"video not found: {path}")
    reader = VideoReader(str(path))
    out: list[np.ndarray] = []
    try:
        rate = reader.info.rate
        for sf in reader.frames():
            rgb = sf.rgb
            size = fit_size(rgb.shape[1], rgb.shape[0], max_size)
            out.append(np.ascontiguousarray(resize(rgb, size)[0]))
            if len(out) >= frames:
                break
    finally:
        reader.close()
    if len(out) < 2:
        raise StyleEngineError(f"{path}: needs at least 2 video frames to measure flicker, got {len(out)}")
    return out, float(rate) if rate else None


def style_image_for(style: str) -> Path | None:
    """The bundled reference image for the style distance: a built-in's painting, or for a checkpoint/bundle
    trained on one of those paintings (its metadata names the style image file), that painting. Else None."""
    b = get_builtin(style)
    if b:
        return style_image_path(b.painting)
    meta: dict = {}
    path = Path(style)
    try:
        if path.is_dir():
            meta = load_bundle(path).manifest.get("style") or {}
        elif path.is_file():
            from styleengine.core.checkpoint import load_checkpoint

            meta = load_checkpoint(path).style
    except (StyleEngineError, ImportError):
        return None
    stem = Path(str(meta.get("image") or "")).stem
    return style_image_path(stem) if stem in PAINTINGS else None


def measure(frames: Sequence[np.ndarray], stylize: Callable[[np.ndarray], np.ndarray], *,
            blends: Sequence[float] = DEFAULT_BLENDS, style_distance: Callable[[np.ndarray], float] | None = None,
            batch: int = 4, single_band: bool = False,
            configs: Mapping[str, TemporalConfig] | None = None) -> list[VariantResult]:
    """Run every variant over `frames` (list of (H, W, 3) uint8) with `stylize` ((N, H, W, 3) -> same);
    `configs` adds stabilizers of other settings, as rows "temporal NAME"."""
    stabs = {f"temporal b={b:g}": TemporalStabilizer(TemporalConfig(blend=b)) for b in blends}
    if single_band:
        stabs.update({f"temporal b={b:g} one band": TemporalStabilizer(TemporalConfig(blend=b, low_blend=b))
                      for b in blends})
    stabs.update({f"temporal {k}": TemporalStabilizer(c) for k, c in (configs or {}).items()})
    names = ["input", "per-frame", *stabs]
    meters = {n: WarpErrorMeter() for n in names}
    stab_seconds = {n: 0.0 for n in stabs}
    n = len(frames)
    sample_at = set(np.linspace(0, n - 1, min(STYLE_SAMPLES, n)).round().astype(int).tolist())
    dist: dict[str, list[float]] = {k: [] for k in names}
    # Per stabilizer, squared error summed over the meter's pixels [on its fallback pixels, on all]: rows its
    # output, per-frame, input; and the pixel counts.
    split = {k: np.zeros((4, 2)) for k in stabs}
    motion = InputMotion()
    for start in range(0, n, batch):
        chunk = frames[start:start + batch]
        styl = stylize(np.stack(chunk))
        for j, (frame, s) in enumerate(zip(chunk, styl)):
            i = start + j
            m = motion.update(frame)
            outs = {"input": frame, "per-frame": s}
            own_motion = {}  # each stabilizer's own analysis of this frame: where it falls back
            for name, stab in stabs.items():
                t = time.perf_counter()
                own_motion[name] = stab.analyze(frame)
                outs[name] = stab.apply(frame, s, FrameMeta(i, 0.0, 0, own_motion[name]))
                stab_seconds[name] += time.perf_counter() - t
            terms = {}
            for name, o in outs.items():
                terms[name] = meters[name].update(o, m)
                if style_distance is not None and i in sample_at:
                    dist[name].append(style_distance(o))
            for name, own in own_motion.items():
                if terms[name] is None:
                    continue
                meter_mask = terms[name][1]
                on = own.fallback((s.shape[1], s.shape[0])) & meter_mask
                for row, who in enumerate((name, "per-frame", "input")):
                    sq = terms[who][0]
                    split[name][row] += (sq[on].sum(), sq[meter_mask].sum())
                split[name][3] += (on.sum(), meter_mask.sum())
    results = []
    for name in names:
        v = VariantResult(name, meters[name].value, float(np.mean(dist[name])) if dist[name] else None)
        if name in stabs:
            v.extra = {"temporal_ms_per_frame": round(1000 * stab_seconds[name] / n, 2),
                       "scene_cuts": stabs[name].counters.resets, **fallback_split(split[name])}
        results.append(v)
    base = next(v for v in results if v.name == "per-frame")
    for v in results:
        if base.warp_error and v.warp_error is not None:
            v.ratio_to_per_frame = v.warp_error / base.warp_error
        if base.style_distance and v.style_distance is not None:
            v.style_change = v.style_distance / base.style_distance - 1.0
    return results


def fallback_split(sums: np.ndarray) -> dict[str, float | None]:
    """measure()'s per-stabilizer sums -> shares (None where there is nothing to divide by)."""
    (own, own_all), (pf, pf_all), (inp, inp_all), (px, px_all) = sums
    share = lambda a, b: round(float(a / b), 4) if b > 0 else None  # noqa: E731
    rest = (inp_all - inp) / (px_all - px) if px_all > px else 0.0
    return {"fallback_pixels": share(px, px_all), "error_on_fallback": share(own, own_all),
            "per_frame_error_on_fallback": share(pf, pf_all),
            "input_error_there_x_rest": share(inp / px, rest) if px > 0 else None}


def evaluate_flicker(video: str | os.PathLike, style: str, *, frames: int = DEFAULT_FRAMES, backend: str = "auto",
                     precision: str | None = None,
                     blends: Sequence[float] = DEFAULT_BLENDS, max_size: int | None = DEFAULT_MAX_SIZE,
                     style_image: str | os.PathLike | None = None, single_band: bool = False,
                     configs: Mapping[str, TemporalConfig] | None = None) -> FlickerReport:
    """Measure flicker of `style` on the first `frames` frames of `video`; see the module doc."""
    if frames < 2:
        raise StyleEngineError(f"--frames must be at least 2, got {frames}")
    for b in blends:
        if not 0.0 < b < 1.0:
            raise StyleEngineError(f"temporal blend values must be in (0, 1), got {b}")
    t0 = time.perf_counter()
    clip, _ = read_frames(video, frames, max_size)
    notes = []
    ref = Path(style_image) if style_image else style_image_for(str(style))
    sd = None
    if ref is not None:
        if not ref.is_file():
            raise StyleEngineError(f"style image not found: {ref}")
        sd = StyleDistance(ref)
    else:
        notes.append("no style image known for this style (pass --style-image): style distance not measured")
    with Stylizer(str(style), backend, precision=precision) as st:  # "a:0.5,b" too
        d = st.describe()
        backend_name = f"{d.get('backend')} {d.get('precision') or ''}".strip()
        variants = measure(clip, st.stylize_batch, blends=blends, style_distance=sd.image if sd else None,
                           single_band=single_band, configs=configs)
    return FlickerReport(video=str(video), style=str(style), frames=len(clip), size=(clip[0].shape[1], clip[0].shape[0]),
                         backend=backend_name, variants=variants, style_image=str(ref) if ref else None,
                         seconds=time.perf_counter() - t0, notes=notes)
