"""Loaders: what a backend runs, found in a bundle, in the cache, or made once on first use (as in Polygraphy,
apart from the runners). Each loader is a callable returning the artifact's path; a backend calls it in load().

    BundleFile     a file the bundle already holds (an ONNX model, model.pt)
    Int8Onnx       the statically quantized INT8 copy of the FP32 ONNX, made once and cached
    TensorRTPlan   a plan matching this GPU and TensorRT, from the bundle or the cache, else built once

plus building a bundle from a checkpoint on first use (bundle_from_checkpoint). This module is the engine's
only door to the export stage; it imports export lazily because export needs onnx (and torch to export).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from styleengine.core.bundle import Bundle, is_bundle, load_bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path, sha256_file
from styleengine.core.log import log, progress
from styleengine.core.paths import cache_dir, cache_root
from styleengine.core.plan_sidecar import current_runtime, find_compatible_plan
from styleengine.core.shapes import Profile, parse_shapes


class Loader:
    description = "model"

    def __call__(self) -> Path:
        raise NotImplementedError


class BundleFile(Loader):
    """A model file the bundle holds: "fp32"/"fp16" ONNX or "checkpoint" (model.pt)."""

    def __init__(self, bundle: Bundle, what: str):
        self.bundle, self.what = bundle, what
        self.description = "model.pt" if what == "checkpoint" else f"{what} ONNX"

    def __call__(self) -> Path:
        path = self.bundle.checkpoint if self.what == "checkpoint" else self.bundle.onnx(self.what)
        if path is None:
            name = "model.pt" if self.what == "checkpoint" else f"a {self.what} ONNX model"
            raise StyleEngineError(f"{self.bundle.path}: bundle has no {name}")
        self.bundle.verify(path)
        return path


def _export(module: str):
    """An export-stage module (needs the `onnx` package; torch too for exporting)."""
    import importlib

    try:
        return importlib.import_module(f"styleengine.export.{module}")
    except ImportError as exc:
        raise StyleEngineError(f"this needs the export tools, which failed to import ({exc}); "
                               f"pip install 'styleengine[train]'") from None


class Int8Onnx(Loader):
    """The INT8 (QDQ) model of the bundle's FP32 ONNX: quantized once, cached by the FP32 model's content."""

    description = "int8 ONNX (quantized from fp32)"

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.quality: dict[str, Any] | None = None

    def target(self, fp32: Path) -> Path:
        quantize = _export("quantize")
        return cache_root() / "int8" / f"{sha256_file(fp32)[:24]}-{quantize.QUANT_VERSION}.onnx"

    def __call__(self) -> Path:
        fp32 = BundleFile(self.bundle, "fp32")()
        quantize = _export("quantize")
        target = self.target(fp32)
        report = target.with_suffix(".json")
        if not (target.is_file() and report.is_file()):
            cache_dir("int8")
            log.info("quantizing %s to INT8 (once; cached in %s)", self.bundle.style_name, target.parent)
            with progress(f"quantize {self.bundle.style_name}", 2, unit="step") as p:
                quantize.quantize_onnx(fp32, target)
                p.update(advance=1, info="measuring INT8 vs FP32")
                quality = quantize.measure_quality(fp32, target)
                p.update(advance=1)
            with atomic_path(report) as tmp:
                tmp.write_text(json.dumps(quality, indent=2) + "\n")
        self.quality = json.loads(report.read_text())
        return target


class TensorRTPlan(Loader):
    """A plan for this GPU and TensorRT: the bundle's own or a cached one whose sidecar matches (checked before
    deserializing), else built once from the FP16 ONNX into the bundle, or into the cache when the bundle is
    read-only. `build=False` refuses to build."""

    description = "TensorRT plan"

    def __init__(self, bundle: Bundle, *, device_index: int = 0, build: bool = True, trt: Any = None):
        self.bundle, self.device_index, self.build, self.trt = bundle, device_index, build, trt

    def cache_folder(self) -> Path:
        key = (self.bundle.manifest.get("onnx") or {}).get("fp16", {}).get("sha256") or self.bundle.path.name
        return cache_root() / "plans" / str(key)[:24]

    def find(self) -> tuple[Path | None, list[str]]:
        runtime = current_runtime(self.trt, self.device_index)
        if runtime is None:
            raise StyleEngineError("TensorRT plan: cannot identify this GPU (no CUDA device answers)")
        onnx_sha = ((self.bundle.manifest.get("onnx") or {}).get("fp16") or {}).get("sha256")
        reasons: list[str] = []
        for folder in (self.bundle.plans_dir, self.cache_folder()):
            plan, rejected = find_compatible_plan(folder, runtime, onnx_sha256=onnx_sha)
            reasons += rejected
            if plan is not None:
                return plan, reasons
        return None, reasons

    def __call__(self) -> Path:
        plan, reasons = self.find()
        if plan is not None:
            return plan
        for r in reasons:
            log.info("TensorRT plan rejected: %s", r)
        if not self.build:
            raise StyleEngineError(f"{self.bundle.path}: no TensorRT plan for this GPU/TensorRT "
                                   f"({'; '.join(reasons) or 'none built'}); rebuild with `styleengine build`")
        onnx = self.bundle.onnx("fp16")
        if onnx is None:  # the plan's precision comes from the (strongly typed) FP16 graph: nothing else will do
            raise StyleEngineError(f"{self.bundle.path}: no FP16 ONNX model to build a TensorRT plan from; "
                                   f"rebuild the bundle with `styleengine build`")
        self.bundle.verify(onnx)
        trt_info = self.bundle.manifest.get("tensorrt") or {}
        profiles = [Profile.from_dict(p) for p in trt_info.get("profiles") or []] or parse_shapes(None)
        out_dir = self.bundle.plans_dir if os.access(self.bundle.path, os.W_OK) else self.cache_folder()
        out_dir.mkdir(parents=True, exist_ok=True)
        log.info("building TensorRT plan for %s (once; a few minutes) in %s", self.bundle.style_name, out_dir)
        tensorrt_build = _export("tensorrt_build")
        with progress(f"TensorRT plan for {self.bundle.style_name}", None):
            built = tensorrt_build.build_plans(onnx, out_dir, profiles=profiles, refit=bool(trt_info.get("refit")),
                                               trt=self.trt, device_index=self.device_index)
        if not built:
            raise StyleEngineError("TensorRT builder produced no plan")
        return Path(built[0].plan)


def model_loader(bundle: Bundle, backend: str, precision: str) -> Loader:
    """The artifact backend `backend` runs at `precision` for `bundle`."""
    if backend == "torch":
        return BundleFile(bundle, "checkpoint")
    if backend == "tensorrt":
        return TensorRTPlan(bundle)
    if precision == "int8":
        return Int8Onnx(bundle)
    if backend == "openvino":
        return BundleFile(bundle, "fp32")  # OpenVINO picks its own inference precision from the FP32 graph
    return BundleFile(bundle, precision)


# ------------------------------------------------------------------------------------ bundles on first use
def cached_bundle_path(sha256: str) -> Path:
    return cache_root() / "bundles" / f"{sha256[:32]}.engine"  # content only: renames/moves reuse it


def bundle_from_checkpoint(checkpoint: str | os.PathLike) -> Bundle:
    """The cached bundle built from `checkpoint` (keyed by its content), building it on first use."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise StyleEngineError(f"checkpoint not found: {checkpoint}")
    sha = sha256_file(checkpoint)
    target = cached_bundle_path(sha)
    if is_bundle(target):
        bundle = load_bundle(target)
        if bundle.manifest.get("source_sha256") in (None, sha):
            return bundle
    build = _export("build")
    cache_dir("bundles")
    log.info("building a bundle for %s (once; cached in %s)", checkpoint.name, target)
    result = build.build_bundle(checkpoint, target, overwrite=True, label=checkpoint.name)
    return load_bundle(result.path)


def build_bundle(checkpoint: str | os.PathLike, output: str | os.PathLike, **options: Any) -> Bundle:
    """export.build.build_bundle for engine code (e.g. benchmark bundles of random weights)."""
    return load_bundle(_export("build").build_bundle(checkpoint, output, **options).path)
