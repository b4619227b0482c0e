"""Multi-style blending (`--style starry_night:0.6,great_wave:0.4`).

Two ways to mix styles:

- weights (network interpolation): when every part is a bundle of the same architecture, each weight tensor of
  the models is averaged with the given weights into one new bundle (cached by content). It then runs like any
  single style, on every backend and at single-style speed, without torch: the ONNX models' initializers are
  interpolated directly (model.pt too where torch is installed). Built-ins are all trained from the same
  initialization, which is what makes their weights interpolate sensibly (like ESRGAN's network interpolation).
- outputs: each style runs on its own and the uint8 outputs are averaged per pixel (stylizer.BlendedStylizer).
  Works for any mix (different presets), at N times the inference cost.

A weight blend's fixed 4-px pattern (core.phase_pattern) is not the blend of its parts' patterns, so where the
networks carry a phase bias it is measured again on the blend, on the bundled calibration photos with ONNX
Runtime, and the bias corrected by it, or set to zero where the corrected one does not lower the outputs'
peakiness on calibration photos it was not measured on (skipped, with the interpolated bias kept, where ONNX
Runtime is missing).

`--strength` (mixing with the input photo) is postprocess's, applied after either kind of blend.
Weights are normalized to sum to 1; a part without a weight gets an equal share of what is left.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from styleengine.core import __version__
from styleengine.core.bundle import (
    BUNDLE_FORMAT,
    CHECKPOINT,
    MANIFEST,
    Bundle,
    file_entries,
    is_bundle,
    load_bundle,
)
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_dir
from styleengine.core.log import log
from styleengine.core.paths import assets_dir, cache_dir
from styleengine.core.phase_pattern import (
    BIAS_SHAPE,
    PHASE,
    downscale,
    mean_peakiness,
    phase_pattern,
    split_for_check,
)

PHASE_BIAS = "net.phase_bias"  # the phase bias's initializer in our exported graphs (core.network)
# In the cache key: a blend cached by an older way of making it (here: before its phase bias was checked on
# photos it was not measured on) is made again, not reused.
BLEND_METHOD = 2


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


def architecture(bundle: Bundle) -> str:
    return json.dumps(bundle.manifest.get("arch"), sort_keys=True)


def same_architecture(bundles: Sequence[Bundle]) -> bool:
    """Weight blending needs one architecture and an ONNX model of each precision in every part."""
    archs = {architecture(b) for b in bundles}
    return len(archs) == 1 and None not in (b.manifest.get("arch") for b in bundles) and all(
        b.onnx("fp32") is not None for b in bundles)


def blend_arrays(arrays: Sequence[np.ndarray], weights: Sequence[float], name: str) -> np.ndarray:
    """Weighted sum of same-shape float arrays (in float32, cast back); other dtypes must be identical."""
    first = arrays[0]
    if any(a.shape != first.shape or a.dtype != first.dtype for a in arrays):
        raise StyleEngineError(f"blend: weight {name!r} differs in shape or type between the styles")
    if not np.issubdtype(first.dtype, np.floating):
        if any(not np.array_equal(a, first) for a in arrays):
            raise StyleEngineError(f"blend: non-float tensor {name!r} differs between the styles")
        return first
    acc = sum(np.float32(w) * a.astype(np.float32) for a, w in zip(arrays, weights))
    return acc.astype(first.dtype)


def blend_onnx(paths: Sequence[Path], weights: Sequence[float], out: Path) -> None:
    """Interpolate the initializers of ONNX models with one graph into `out` (needs the `onnx` package)."""
    import onnx
    from onnx import numpy_helper

    models = [onnx.load(str(p)) for p in paths]
    graphs = [[(n.op_type, tuple(n.input), tuple(n.output)) for n in m.graph.node] for m in models]
    if any(g != graphs[0] for g in graphs):
        raise StyleEngineError("blend: the styles' ONNX graphs differ (different exporter or preset); use output "
                               "blending (BlendedStylizer)")
    inits = [{t.name: t for t in m.graph.initializer} for m in models]
    base = models[0]
    for i, t in enumerate(base.graph.initializer):
        if any(t.name not in other for other in inits[1:]):
            raise StyleEngineError(f"blend: weight {t.name!r} is missing from one of the styles")
        arr = blend_arrays([numpy_helper.to_array(d[t.name]) for d in inits], weights, t.name)
        base.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, t.name))
    onnx.save(base, str(out))


def blend_state_dicts(state_dicts: Sequence[dict[str, Any]], weights: Sequence[float]) -> dict[str, Any]:
    """Parameter-wise weighted sum (in float32) of torch state dicts with identical keys and shapes."""
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


def _calibration_photos() -> list[np.ndarray]:
    from PIL import Image

    photos = []
    for f in sorted(assets_dir("calibration").glob("*.jpg")):
        with Image.open(f) as im:
            photos.append(downscale(np.asarray(im.convert("RGB"))))
    return photos


def _runner(model_bytes: bytes):
    """uint8 HxWx3 -> the ONNX model's uint8 output (None without ONNX Runtime)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return lambda photo: sess.run(None, {"input": np.ascontiguousarray(photo[None])})[0][0]


def phase_bias_fix(fp32_onnx: Path) -> Callable[[np.ndarray], np.ndarray] | None:
    """How a blended model's phase bias is to change (None without ONNX Runtime), measured on its FP32 ONNX
    graph: corrected by the fixed pattern left in its outputs on most of the calibration photos, where that lowers
    the outputs' peakiness on the others; else set to zero (core.phase_pattern). The fix maps a bias array (of
    any of the blend's files, in float32) to the new one."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fp32_onnx))
    init = next((t for t in model.graph.initializer if t.name == PHASE_BIAS), None)
    if init is None:
        raise StyleEngineError(f"blend: {fp32_onnx.name} has no {PHASE_BIAS} weight although its architecture has one")
    run = _runner(model.SerializeToString())
    measure, check = split_for_check(_calibration_photos())
    if run is None or not measure:
        return None
    current = numpy_helper.to_array(init).astype(np.float32).reshape(3, PHASE, PHASE)
    pattern = phase_pattern([run(p) for p in measure])

    def with_bias(bias: np.ndarray):
        init.CopyFrom(numpy_helper.from_array(bias.reshape(BIAS_SHAPE).astype(np.float32), PHASE_BIAS))
        return _runner(model.SerializeToString())

    with_it = mean_peakiness(with_bias(current - pattern), check)
    without = mean_peakiness(with_bias(np.zeros_like(current)), check)
    if with_it < without:
        log.info("blend: phase bias corrected by %.2f levels rms (peakiness %.3fx with it, %.3fx without, on %d "
                 "calibration photos)", float(np.sqrt(np.mean(pattern ** 2))), with_it, without, len(check))
        return lambda bias: bias - pattern.reshape(bias.shape)
    log.info("blend: phase bias left at zero (peakiness %.3fx with it, %.3fx without, on %d calibration photos)",
             with_it, without, len(check))
    return np.zeros_like


def fix_phase_bias(onnx_path: Path, fix: Callable[[np.ndarray], np.ndarray]) -> None:
    """Apply a phase_bias_fix to a model's phase-bias initializer, kept in the initializer's own dtype."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    for i, t in enumerate(model.graph.initializer):
        if t.name == PHASE_BIAS:
            arr = numpy_helper.to_array(t)
            new = fix(arr.astype(np.float32)).astype(arr.dtype)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(new, t.name))
            onnx.save(model, str(onnx_path))
            return
    raise StyleEngineError(f"blend: {onnx_path.name} has no {PHASE_BIAS} weight although its architecture has one")


def _blend_checkpoint(bundles: Sequence[Bundle], weights: Sequence[float], out: Path, style: dict,
                      phase_fix: Callable[[np.ndarray], np.ndarray] | None = None) -> bool:
    """model.pt of the blend, where torch is installed and every part has one. Returns whether it was written."""
    if any(b.checkpoint is None for b in bundles):
        return False
    try:
        import torch

        from styleengine.core.checkpoint import load_checkpoint, save_model
        from styleengine.core.network import TransformerNet
    except ImportError:
        return False  # no torch: the blend runs on the ONNX backends only
    ckpts = [load_checkpoint(b.checkpoint) for b in bundles]
    model = TransformerNet(ckpts[0].arch)
    state = blend_state_dicts([c.state_dict for c in ckpts], weights)
    if phase_fix is not None:
        state["phase_bias"] = torch.from_numpy(phase_fix(state["phase_bias"].float().numpy()))
    model.load_state_dict(state)
    half = all(not v.is_floating_point() or v.dtype.itemsize == 2 for c in ckpts for v in c.state_dict.values())
    save_model(out, model, style=style, train_config={"blend_of": style["blend"]}, loss_net=ckpts[0].loss_net,
               half=half)
    return True


def blend_bundles(bundles: Sequence[Bundle], weights: Sequence[float]) -> Bundle:
    """One bundle whose networks interpolate the parts' weights; cached under <cache>/blends/ by content."""
    if not same_architecture(bundles):
        raise StyleEngineError("weight blending needs styles of one preset/architecture; use output blending "
                               "(BlendedStylizer in the Python API)")
    for b in bundles:
        b.verify_all()
    sources = [b.expected_sha256(b.onnx("fp32").name) or b.path.name for b in bundles]
    parts = [[s, round(w, 6)] for s, w in zip(sources, weights)]
    key = hashlib.sha256(json.dumps({"method": BLEND_METHOD, "parts": parts}).encode()).hexdigest()
    target = cache_dir("blends") / f"blend-{key[:16]}.engine"
    if is_bundle(target):
        return load_bundle(target)
    name = "+".join(f"{b.style_name}:{w:.3g}" for b, w in zip(bundles, weights))
    style = {"name": name, "blend": [{"style": b.style_name, "weight": w, "source_sha256": s,
                                      "attribution": (b.manifest.get("style") or {}).get("attribution")}
                                     for b, w, s in zip(bundles, weights, sources)]}
    log.info("blending %s (once; cached in %s)", name, target)
    with atomic_dir(target, overwrite=True) as tmp:
        models, files = {}, []
        for precision in ("fp32", "fp16"):
            paths = [b.onnx(precision) for b in bundles]
            if all(p is not None for p in paths):
                blend_onnx(paths, weights, tmp / paths[0].name)
                models[precision] = paths[0].name
                files.append(paths[0].name)
        first = bundles[0].manifest
        fix = None
        if (first.get("arch") or {}).get("phase_bias") and "fp32" in models:
            fix = phase_bias_fix(tmp / models["fp32"])
            if fix is not None:
                for f in models.values():
                    fix_phase_bias(tmp / f, fix)
        if _blend_checkpoint(bundles, weights, tmp / CHECKPOINT, style, fix):
            files.append(CHECKPOINT)
        entries = file_entries(tmp, files)
        manifest = {"format": BUNDLE_FORMAT, "style": style, "preset": first.get("preset"), "arch": first.get("arch"),
                    "io": first.get("io"), "loss_net": first.get("loss_net"), "source_format": "blend",
                    "created_by": f"styleengine {__version__}",
                    "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "models": models,
                    "onnx": {p: {"file": f, "sha256": entries[f]["sha256"]} for p, f in models.items()},
                    "tensorrt": {"built": False, "reason": "blend",
                                                   "profiles": (first.get("tensorrt") or {}).get("profiles")},
                    "files": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return load_bundle(target)
