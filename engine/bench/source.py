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

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from styleengine.engine.bundle import BUNDLE_FORMAT, CHECKPOINT, Bundle, is_bundle
from styleengine.errors import StyleEngineError

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
        from styleengine.train.checkpoint import load_checkpoint

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
        from styleengine.train.network import PRESETS
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
        from styleengine.train.network import ArchConfig, macs_per_pixel
    except ImportError:  # deployment install without torch: no MAC count, so no TFLOP/s column
        return bundle.manifest.get("arch"), None
    arch = bundle.manifest.get("arch")
    if not isinstance(arch, dict) and bundle.checkpoint is not None:
        from styleengine.train.checkpoint import load_checkpoint

        arch = load_checkpoint(bundle.checkpoint).arch.to_dict()
    if not isinstance(arch, dict):
        return None, None
    try:
        return arch, float(macs_per_pixel(ArchConfig.from_dict(arch)))
    except ValueError:
        return arch, None


def _random_source(name: str, seed: int, need_onnx: bool, shapes: list[str] | None) -> BenchSource:
    try:
        import torch

        from styleengine.train.checkpoint import save_model
        from styleengine.train.network import PRESETS, TransformerNet
    except ImportError:
        raise StyleEngineError(f"a random-weight {name!r} network needs torch (pip install 'styleengine[train]')") from None
    tmp = Path(tempfile.mkdtemp(prefix="styleengine-bench-"))
    cleanup = [lambda: shutil.rmtree(tmp, ignore_errors=True)]
    try:
        torch.manual_seed(seed)
        model = TransformerNet(PRESETS[name]).eval()
        weights = f"random (preset {name}, seed {seed})"
        style = {"name": f"{name}-random", "attribution": "random weights for speed benchmarking"}
        ckpt = save_model(tmp / f"{name}-random.pt", model, style=style, loss_net="none (random weights)")
        if need_onnx:
            from styleengine.engine.bundle import load_bundle
            from styleengine.export.build import build_bundle

            # TensorRT plans (where TensorRT and a GPU exist) get a profile that covers the benchmark grid.
            bundle = load_bundle(build_bundle(ckpt, tmp / f"{name}-random.engine", shapes=shapes).path)
        else:
            # The torch backend and the baseline need only model.pt: skip the ONNX export.
            folder = tmp / f"{name}-random.engine"
            folder.mkdir()
            shutil.copy2(ckpt, folder / CHECKPOINT)
            bundle = Bundle(folder, {"format": BUNDLE_FORMAT, "style": style, "preset": name,
                                     "arch": PRESETS[name].to_dict()})
    except BaseException:
        for fn in cleanup:
            fn()
        raise
    arch, macs = _arch_and_macs(bundle)
    return BenchSource(bundle, name, weights, arch, macs, cleanup)


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
        if is_bundle(text):
            from styleengine.engine.bundle import load_bundle

            bundle = load_bundle(text)
        else:
            from styleengine.engine.styles import resolve_style

            bundle = resolve_style(text)
        label = text
    arch, macs = _arch_and_macs(bundle)
    return BenchSource(bundle, label, "trained", arch, macs)
