"""What the benchmark runs: a real style (bundle, checkpoint, built-in) or a preset with random weights.

STYLE resolution, in order:
  1. an existing path or a built-in name -> styleengine.engine.styles.resolve_style (trained weights);
  2. `johnson` / `fast` (or `preset:johnson`) -> that preset's network with random weights (seeded). Speed does
     not depend on the weight values, so this measures deployment speed without training anything; every output
     says "random weights" so nobody mistakes its pictures for a style.
A random-weight bundle is built in a temporary folder (ONNX export only when a non-torch backend will run) and
removed when the benchmark ends.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from styleengine.core.bundle import (
    BUNDLE_FORMAT,
    CHECKPOINT,
    MANIFEST,
    Bundle,
    is_bundle,
    load_bundle,
)
from styleengine.core.errors import StyleEngineError

from ..loaders import build_bundle
from ..styles import resolve_style

PRESET_PREFIX = "preset:"


@dataclass
class BenchSource:
    bundle: Bundle
    label: str
    weights: str  # "trained" or "random (preset X, seed N)"
    arch: dict[str, Any] | None = None
    macs_per_pixel: float | None = None
    _cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def random_weights(self) -> bool:
        return self.weights.startswith("random")

    def model(self):
        """The network as eager torch (for the baseline row), from the bundle's model.pt."""
        from styleengine.core.checkpoint import load_checkpoint

        if self.bundle.checkpoint is None:
            raise StyleEngineError(f"{self.bundle.path}: bundle has no model.pt, so no eager torch baseline")
        return load_checkpoint(self.bundle.checkpoint).build_model("cpu")

    def close(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()

    def describe(self) -> dict[str, Any]:
        return {"style": self.label, "bundle": str(self.bundle.path), "weights": self.weights,
                "preset": self.bundle.preset, "arch": self.arch, "macs_per_pixel": self.macs_per_pixel,
                "flop_per_pixel": 2 * self.macs_per_pixel if self.macs_per_pixel else None}


def preset_name(style: str) -> str | None:
    """The preset a STYLE string names, or None when it names something else."""
    try:
        from styleengine.core.network import PRESETS
    except ImportError:  # no torch: presets cannot be built anyway
        PRESETS = {"johnson": None, "fast": None}
    name = style[len(PRESET_PREFIX):] if style.startswith(PRESET_PREFIX) else style
    if name in PRESETS and not Path(style).exists():
        return name
    if style.startswith(PRESET_PREFIX):
        raise StyleEngineError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return None


def _arch_and_macs(bundle: Bundle) -> tuple[dict[str, Any] | None, float | None]:
    try:
        from styleengine.core.network import ArchConfig, macs_per_pixel
    except ImportError:  # deployment install without torch: no MAC count, so no TFLOP/s column
        return bundle.manifest.get("arch"), None
    arch = bundle.manifest.get("arch")
    if not isinstance(arch, dict) and bundle.checkpoint is not None:
        from styleengine.core.checkpoint import load_checkpoint

        arch = load_checkpoint(bundle.checkpoint).arch.to_dict()
    if not isinstance(arch, dict):
        return None, None
    try:
        return arch, float(macs_per_pixel(ArchConfig.from_dict(arch)))
    except ValueError:
        return arch, None


def _spread_output(model):
    """Scale the last conv so random weights give outputs spread over 0-255 (mean ~128, std ~60) instead of ~0:
    the parity columns (difference from the FP32 baseline) then mean something. Speed is unchanged."""
    import torch

    with torch.no_grad():
        x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 255
        y = model(x)
        last = model.deconv3.conv2d
        scale = 60.0 / max(float(y.std()), 1e-6)
        last.weight.mul_(scale)
        last.bias.mul_(scale)
        last.bias.add_(127.5 - float(model(x).mean()))
    return model


def make_random_bundle(name: str, folder: Path, *, seed: int = 0, need_onnx: bool = True,
                       shapes: list[str] | None = None) -> Bundle:
    """Write a bundle of preset `name` with random (seeded, output-spread) weights into `folder` (must not exist).

    need_onnx=False writes only manifest.json + model.pt (what the torch backend and the baseline use), skipping
    the ONNX export; otherwise export.build_bundle makes the full bundle (TensorRT plans where TensorRT and a GPU
    exist, with a profile from `shapes`)."""
    try:
        import torch

        from styleengine.core.checkpoint import save_model
        from styleengine.core.network import PRESETS, TransformerNet
    except ImportError:
        raise StyleEngineError(f"a random-weight {name!r} network needs torch (pip install 'styleengine[train]')") from None
    folder = Path(folder)
    if folder.exists():
        raise StyleEngineError(f"output exists: {folder}")
    torch.manual_seed(seed)
    model = _spread_output(TransformerNet(PRESETS[name]).eval())
    style = {"name": f"{name}-random", "attribution": "random weights for speed benchmarking"}
    with tempfile.TemporaryDirectory(prefix="styleengine-bench-ckpt-") as td:
        ckpt = save_model(Path(td) / f"{name}-random.pt", model, style=style, loss_net="none (random weights)")
        if need_onnx:
            return build_bundle(ckpt, folder, shapes=shapes)
        folder.mkdir()
        shutil.copy2(ckpt, folder / CHECKPOINT)
    manifest = {"format": BUNDLE_FORMAT, "style": style, "preset": name, "arch": PRESETS[name].to_dict(),
                "loss_net": "none (random weights)", "note": "torch-only benchmark bundle (no ONNX): random weights"}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return load_bundle(folder)


def _random_source(name: str, seed: int, need_onnx: bool, shapes: list[str] | None) -> BenchSource:
    tmp = Path(tempfile.mkdtemp(prefix="styleengine-bench-"))
    cleanup = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    try:
        bundle = make_random_bundle(name, tmp / f"{name}-random.engine", seed=seed, need_onnx=need_onnx, shapes=shapes)
    except BaseException:
        cleanup[0]()
        raise
    arch, macs = _arch_and_macs(bundle)
    return BenchSource(bundle, name, f"random (preset {name}, seed {seed})", arch, macs, cleanup)


def profile_spec(sizes: list[tuple[int, int]], batches: list[int]) -> str:
    """One TensorRT profile MIN:OPT:MAX (NxHxW) covering every grid shape; OPT = the largest frame at the smallest batch."""
    hs, ws = [h for h, _ in sizes], [w for _, w in sizes]
    big = max(sizes, key=lambda s: s[0] * s[1])
    return f"{min(batches)}x{min(hs)}x{min(ws)}:{min(batches)}x{big[0]}x{big[1]}:{max(batches)}x{max(hs)}x{max(ws)}"


def open_source(style: str | Path | Bundle, *, seed: int = 0, need_onnx: bool = True,
                shapes: list[str] | None = None) -> BenchSource:
    """Resolve STYLE for benchmarking; call .close() on the result (removes temporary bundles)."""
    if isinstance(style, Bundle):
        bundle, label = style, style.style_name
    else:
        text = str(style)
        name = preset_name(text)
        if name is not None:
            return _random_source(name, seed, need_onnx, shapes)
        bundle = load_bundle(text) if is_bundle(text) else resolve_style(text)
        label = text
    arch, macs = _arch_and_macs(bundle)
    return BenchSource(bundle, label, _weights_kind(bundle), arch, macs)


def _weights_kind(bundle: Bundle) -> str:
    """'trained', or 'random (...)' for bundles this module (or a benchmark script) made from random weights."""
    loss_net = str(bundle.manifest.get("loss_net") or "")
    attribution = str((bundle.manifest.get("style") or {}).get("attribution") or "")
    if "random weights" in loss_net or "random weights" in attribution:
        return f"random (bundle metadata: {loss_net or attribution})"
    return "trained"
