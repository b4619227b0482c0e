"""Multi-style blending (`--style starry_night:0.6,great_wave:0.4`) and `--strength`.

Two ways to mix styles, chosen per spec by `plan_blend`:

- "weights" (checkpoint interpolation): when every part is a checkpoint with the same architecture, the
  parameters are averaged with the given weights into one new model file (cached by content hash). It then
  runs like any single style, on every backend and at single-style speed. Built-ins are all trained from the
  same initialization (same seed and preset), which is what makes their weights interpolate sensibly
  (like ESRGAN's network interpolation); for unrelated checkpoints use mode="outputs".
- "outputs": each style runs on its own and the uint8 outputs are averaged per pixel. Works for any mix
  (different presets, bundles without a checkpoint), at N times the inference cost.

`--strength` (mixing with the input photo) is engine/postprocess.py's, applied after either kind of blend.

Weights are normalized to sum to 1; a part without a weight gets an equal share of what is left.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from styleengine.errors import StyleEngineError

BLEND_MODES = ("auto", "weights", "outputs")


@dataclass(frozen=True)
class StylePart:
    style: str  # a built-in name, a checkpoint path or a bundle folder
    weight: float


def _split_weight(part: str) -> tuple[str, float | None]:
    # rsplit on the last ':' only when what follows is a number, so "C:\\x.pt" or "a:b/x.pt" stay paths.
    if ":" in part:
        head, tail = part.rsplit(":", 1)
        try:
            return head.strip(), float(tail)
        except ValueError:
            pass
    return part.strip(), None


def is_multi_style(spec: str) -> bool:
    """True for specs that need blending: several parts, or one part with an explicit weight."""
    parts = [p for p in spec.split(",") if p.strip()]
    return len(parts) > 1 or (len(parts) == 1 and _split_weight(parts[0])[1] is not None)


def parse_style_spec(spec: str) -> list[StylePart]:
    """'a:0.5,b:0.25,c' -> normalized parts. One-line StyleEngineError on malformed specs."""
    if not isinstance(spec, str) or not spec.strip():
        raise StyleEngineError("empty --style")
    raw = [p for p in spec.split(",")]
    if any(not p.strip() for p in raw):
        raise StyleEngineError(f"--style {spec!r}: empty entry between commas")
    parsed = [_split_weight(p) for p in raw]
    for name, w in parsed:
        if not name:
            raise StyleEngineError(f"--style {spec!r}: a weight without a style name")
        if w is not None and (not np.isfinite(w) or w < 0):
            raise StyleEngineError(f"--style {spec!r}: weights must be finite and >= 0, got {w} for {name}")
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        raise StyleEngineError(f"--style {spec!r}: a style is listed twice")
    given = sum(w for _, w in parsed if w is not None)
    missing = [n for n, w in parsed if w is None]
    if missing:
        if len(missing) == len(parsed):
            rest = 1.0
        elif given >= 1.0:
            raise StyleEngineError(f"--style {spec!r}: weights already sum to {given:g}; give {', '.join(missing)} a weight")
        else:
            rest = 1.0 - given
        parsed = [(n, rest / len(missing) if w is None else w) for n, w in parsed]
    total = sum(w for _, w in parsed)
    if total <= 0:
        raise StyleEngineError(f"--style {spec!r}: weights sum to 0")
    return [StylePart(n, w / total) for n, w in parsed]


def blend_outputs(outputs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted per-pixel mean of uint8 images/batches of equal shape."""
    if len(outputs) != len(weights) or not outputs:
        raise StyleEngineError(f"blend: {len(outputs)} outputs but {len(weights)} weights")
    shape = outputs[0].shape
    acc = np.zeros(shape, np.float32)
    for o, w in zip(outputs, weights):
        if o.shape != shape:
            raise StyleEngineError(f"blend: outputs differ in shape ({shape} vs {o.shape})")
        acc += np.float32(w) * o.astype(np.float32)
    return np.clip(acc + 0.5, 0, 255).astype(np.uint8)


def blend_state_dicts(state_dicts: Sequence[dict[str, Any]], weights: Sequence[float]) -> dict[str, Any]:
    """Parameter-wise weighted sum (in float32) of state dicts with identical keys and shapes."""
    if len(state_dicts) != len(weights) or not state_dicts:
        raise StyleEngineError(f"blend: {len(state_dicts)} checkpoints but {len(weights)} weights")
    keys = list(state_dicts[0])
    for sd in state_dicts[1:]:
        if list(sd) != keys or any(sd[k].shape != state_dicts[0][k].shape for k in keys):
            raise StyleEngineError("blend: checkpoints have different architectures; use output blending")
    out = {}
    for k in keys:
        if state_dicts[0][k].is_floating_point():
            out[k] = sum(float(w) * sd[k].float() for sd, w in zip(state_dicts, weights))
        else:
            out[k] = state_dicts[0][k].clone()
    return out


def cache_dir() -> Path:
    root = os.environ.get("STYLEENGINE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "styleengine"


def checkpoint_for(style: str) -> Path | None:
    """The checkpoint file behind a style name/path: a built-in's .pt, a .pt/.pth file, a bundle's model.pt."""
    from .builtin_styles import builtin_path
    from .bundle import is_bundle, load_bundle

    p = builtin_path(style)
    if p is not None:
        return p
    path = Path(style)
    if path.is_file() and path.suffix in (".pt", ".pth"):
        return path
    if path.is_dir() and is_bundle(path):
        return load_bundle(path).checkpoint
    return None


def plan_blend(parts: Sequence[StylePart], mode: str = "auto") -> str:
    """"single", "weights" or "outputs" for these parts. auto: weights when every part has a checkpoint of the same
    architecture (all built-ins of one preset qualify), else outputs."""
    if mode not in BLEND_MODES:
        raise StyleEngineError(f"unknown blend mode {mode!r}; choose one of: {', '.join(BLEND_MODES)}")
    if len(parts) == 1:
        return "single"  # one style: weight normalizes to 1, nothing to blend
    if mode == "outputs":
        return "outputs"
    ckpts = [checkpoint_for(p.style) for p in parts]
    missing = [p.style for p, c in zip(parts, ckpts) if c is None]
    if missing:
        if mode == "weights":
            raise StyleEngineError(f"weight blending needs checkpoints; no checkpoint for: {', '.join(missing)}")
        return "outputs"
    from styleengine.train.checkpoint import load_checkpoint

    archs = {json.dumps(load_checkpoint(c).arch.to_dict(), sort_keys=True) for c in ckpts}
    if len(archs) > 1:
        if mode == "weights":
            raise StyleEngineError("weight blending needs styles of the same preset/architecture; "
                                   "use output blending")
        return "outputs"
    return "weights"


def blend_checkpoint(parts: Sequence[StylePart], output: str | os.PathLike | None = None) -> Path:
    """Interpolate the parts' weights into one model file; cached under <cache>/blends/ unless `output` is given."""
    import torch  # noqa: F401  (checkpoint I/O)

    from styleengine.train.checkpoint import load_checkpoint, save_model
    from styleengine.train.network import TransformerNet

    ckpts = []
    for p in parts:
        c = checkpoint_for(p.style)
        if c is None:
            raise StyleEngineError(f"weight blending needs a checkpoint; none found for style {p.style!r}")
        ckpts.append(load_checkpoint(c))
    archs = {json.dumps(c.arch.to_dict(), sort_keys=True) for c in ckpts}
    if len(archs) > 1:
        raise StyleEngineError("weight blending needs styles of the same preset/architecture; use output blending")
    key = hashlib.sha256(json.dumps([[c.sha256, round(p.weight, 6)] for c, p in zip(ckpts, parts)]).encode())
    name = "+".join(f"{c.style_name}:{p.weight:.3g}" for c, p in zip(ckpts, parts))
    if output is None:
        folder = cache_dir() / "blends"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"blend-{key.hexdigest()[:16]}.pt"
        if target.is_file():
            return target
    else:
        target = Path(output)
    state = blend_state_dicts([c.state_dict for c in ckpts], [p.weight for p in parts])
    model = TransformerNet(ckpts[0].arch)
    model.load_state_dict(state)
    style = {"name": name, "blend": [{"style": c.style_name, "weight": p.weight, "sha256": c.sha256,
                                      "attribution": c.style.get("attribution")} for c, p in zip(ckpts, parts)]}
    half = all(v.dtype == torch.float16 for c in ckpts for v in c.state_dict.values() if v.is_floating_point())
    return save_model(target, model, style=style, train_config={"blend_of": style["blend"]},
                      loss_net=ckpts[0].loss_net, half=half)


def resolve_blend(style: str, mode: str = "auto") -> str:
    """What to hand to resolve_style for `style`: unchanged for a single style; for a multi-style spec whose
    parts interpolate (mode "weights"/"auto" and same architecture) the path of the blended checkpoint.
    Raises a one-line error when the spec needs output blending (use BlendedStylizer)."""
    if not is_multi_style(style):
        return style
    parts = parse_style_spec(style)
    plan = plan_blend(parts, mode)
    if plan == "single":
        return parts[0].style
    if plan == "outputs":
        raise StyleEngineError(f"--style {style!r}: these styles cannot be weight-blended (different architectures "
                               f"or no checkpoint); use output blending (BlendedStylizer)")
    return str(blend_checkpoint(parts))


class BlendedStylizer:
    """Output blending: one Stylizer per part, outputs averaged with the weights. Same array API as Stylizer."""

    def __init__(self, style: str, backend: str = "auto", *, strength: float = 1.0, **options: Any):
        from .stylizer import Stylizer

        self.parts = parse_style_spec(style)
        self.stylizers = []
        try:
            for p in self.parts:
                # --strength is linear, so applying it per part equals applying it to the blend.
                self.stylizers.append(Stylizer(p.style, backend, strength=strength, **options))
        except BaseException:
            self.close()
            raise

    def stylize_batch(self, frames: np.ndarray) -> np.ndarray:
        return blend_outputs([s.stylize_batch(frames) for s in self.stylizers], [p.weight for p in self.parts])

    def stylize_array(self, rgb: np.ndarray) -> np.ndarray:
        return self.stylize_batch(rgb[None])[0]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.stylize_batch(image) if image.ndim == 4 else self.stylize_array(image)

    def close(self) -> None:
        for s in self.stylizers:
            s.close()
        self.stylizers = []

    def __enter__(self) -> "BlendedStylizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
