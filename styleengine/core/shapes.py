"""Image sizes the network takes: the minimum side, --max-size scaling, and TensorRT optimization profiles
from `--shape` strings (pure Python: parsed and validated without TensorRT).

The network reflection-pads to a multiple of 4 and crops back, so any size >= MIN_SIDE works.

A profile gives min/opt/max input shapes (batch, height, width) for the uint8 NHWC input. Spec syntax:
    "720x1280"                         fixed size, batch 1 (min = opt = max)
    "4x720x1280"                       fixed size, batch 4
    "256x256:1080x1920:1920x1920"      min:opt:max H x W, batch 1
    "1x256x256:2x1080x1920:4x1920x1920" min:opt:max with batch
    "default" / "4k"                   the named profiles below
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from styleengine.core.errors import StyleEngineError

# Smallest side the network accepts: reflection padding needs every feature map (1/4 scale) >= 2 px.
MIN_SIDE = 8
MAX_SIDE = 16384
MAX_BATCH = 256

Shape3 = tuple[int, int, int]  # (batch, height, width)


@dataclass(frozen=True)
class Profile:
    min: Shape3
    opt: Shape3
    max: Shape3

    def input_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """NHWC shapes for IOptimizationProfile.set_shape(input, min, opt, max)."""
        return tuple((b, h, w, 3) for b, h, w in (self.min, self.opt, self.max))  # type: ignore[return-value]

    def covers(self, batch: int, height: int, width: int) -> bool:
        return all(lo <= v <= hi for lo, v, hi in zip(self.min, (batch, height, width), self.max))

    def to_dict(self) -> dict:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, d: dict) -> "Profile":
        return cls(*(tuple(int(v) for v in d[k]) for k in ("min", "opt", "max")))  # type: ignore[arg-type]

    def spec(self) -> str:
        return ":".join("x".join(map(str, s)) for s in (self.min, self.opt, self.max))


# 360p..1080p in either orientation, tuned for landscape 1080p (the real-time target).
DEFAULT_PROFILE = Profile((1, 64, 64), (1, 1080, 1920), (1, 1920, 1920))
# Opt-in 4K (UHD, either orientation): large activation memory, so not built by default.
UHD_PROFILE = Profile((1, 1080, 1080), (1, 2160, 3840), (1, 3840, 3840))
NAMED = {"default": DEFAULT_PROFILE, "4k": UHD_PROFILE, "uhd": UHD_PROFILE}

def fit_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(W, H) scaled so the long side is at most max_size (never upscaled); aspect ratio kept."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    if max_size < MIN_SIDE:
        raise StyleEngineError(f"--max-size must be at least {MIN_SIDE} pixels, got {max_size}")
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_max_size(max_size: int | None) -> int | None:
    if max_size is None:
        return None
    if int(max_size) < MIN_SIDE:
        raise StyleEngineError(f"--max-size must be at least {MIN_SIDE} pixels, got {max_size}")
    return int(max_size)


_DIMS = re.compile(r"^\d+(x\d+){1,2}$")


def _parse_dims(text: str, spec: str) -> Shape3:
    t = text.strip().lower()
    if not _DIMS.match(t):
        raise StyleEngineError(f"bad --shape {spec!r}: {text!r} is not HxW or NxHxW")
    vals = [int(v) for v in t.split("x")]
    return (1, vals[0], vals[1]) if len(vals) == 2 else (vals[0], vals[1], vals[2])


def parse_shape(spec: str) -> Profile:
    """One `--shape` value -> Profile (validated)."""
    s = str(spec).strip().lower()
    if s in NAMED:
        return NAMED[s]
    parts = s.split(":")
    if len(parts) == 1:
        lo = opt = hi = _parse_dims(parts[0], spec)
    elif len(parts) == 3:
        lo, opt, hi = (_parse_dims(p, spec) for p in parts)
    else:
        raise StyleEngineError(f"bad --shape {spec!r}: use HxW, NxHxW, MIN:OPT:MAX, or one of {', '.join(NAMED)}")
    prof = Profile(lo, opt, hi)
    validate_profile(prof, spec)
    return prof


def validate_profile(p: Profile, spec: str | None = None) -> None:
    what = f"--shape {spec!r}" if spec else f"profile {p.spec()}"
    for name, i, lo_lim, hi_lim in (("batch", 0, 1, MAX_BATCH), ("height", 1, MIN_SIDE, MAX_SIDE), ("width", 2, MIN_SIDE, MAX_SIDE)):
        lo, opt, hi = p.min[i], p.opt[i], p.max[i]
        if not lo <= opt <= hi:
            raise StyleEngineError(f"bad {what}: {name} must satisfy min <= opt <= max (got {lo}, {opt}, {hi})")
        if lo < lo_lim or hi > hi_lim:
            raise StyleEngineError(f"bad {what}: {name} must be within {lo_lim}..{hi_lim} (got {lo}..{hi})")


def parse_shapes(specs: Iterable[str] | str | None) -> list[Profile]:
    """All `--shape` values -> profiles; None/empty -> [DEFAULT_PROFILE]. Duplicates are dropped."""
    if specs is None:
        return [DEFAULT_PROFILE]
    if isinstance(specs, str):
        specs = [specs]
    out: list[Profile] = []
    for spec in specs:
        p = parse_shape(spec)
        if p not in out:
            out.append(p)
    return out or [DEFAULT_PROFILE]


def covering_profile(profiles: list[Profile], batch: int, height: int, width: int) -> int | None:
    """Index of the profile to run a (batch, H, W) input with: the smallest covering one (least memory,
    opt closest to the input), or None when no profile covers it."""
    best, best_volume = None, None
    for i, p in enumerate(profiles):
        if p.covers(batch, height, width):
            volume = p.max[0] * p.max[1] * p.max[2]
            if best_volume is None or volume < best_volume:
                best, best_volume = i, volume
    return best
