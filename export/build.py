"""`styleengine build`: checkpoint -> bundle folder (FP32 ONNX, FP16 ONNX, manifest, model.pt, TensorRT plans).

The whole bundle is written into a temporary folder beside the target and renamed into place at the end, so a
failure (bad checkpoint, failed parity, Ctrl-C) never leaves a half-written bundle or touches an existing one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from styleengine.core.bundle import (
    CHECKPOINT,
    MANIFEST,
    ONNX_FILES,
    PLANS_DIR,
    file_entries,
    is_bundle,
)
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_dir, sha256_file
from styleengine.core.log import log, progress
from styleengine.core.shapes import Profile, parse_shapes

from . import tensorrt_build
from .fp16 import export_fp16
from .manifest import bundle_manifest, model_metadata
from .onnx_export import DEFAULT_OPSET, export_onnx, read_metadata
from .parity import onnx_parity

TENSORRT_MODES = ("auto", "off", "require")


@dataclass
class BuildResult:
    path: Path
    manifest: dict[str, Any]
    plans: list[Path] = field(default_factory=list)
    tensorrt_note: str | None = None  # one line for stderr when no plan was built


def default_output(checkpoint: str | os.PathLike) -> Path:
    """vangogh.pt -> ./vangogh.engine (in the current folder, like a compiler's output)."""
    return Path.cwd() / f"{Path(checkpoint).stem}.engine"


def _tensorrt_mode(tensorrt: str | bool) -> str:
    if tensorrt is True:
        return "require"
    if tensorrt is False:
        return "off"
    if tensorrt not in TENSORRT_MODES:
        raise StyleEngineError(f"unknown tensorrt mode {tensorrt!r}; choose one of: {', '.join(TENSORRT_MODES)}")
    return tensorrt


def _check_target(output: Path, overwrite: bool) -> None:
    if output.exists():
        if not overwrite:
            raise StyleEngineError(f"output exists (use --overwrite): {output}")
        # --overwrite replaces an old bundle, never some other folder of the user's.
        if not output.is_dir() or (any(output.iterdir()) and not is_bundle(output)):
            raise StyleEngineError(f"refusing to overwrite {output}: it is not a styleengine bundle")
    if not output.parent.is_dir():
        raise StyleEngineError(f"output folder does not exist: {output.parent}")


def _write_checkpoint(ckpt, src: Path | None, dst: Path) -> None:
    """model.pt: a byte copy of a styleengine model file, else re-saved as one (self-describing, no train state)."""
    from styleengine.core.checkpoint import MODEL_FORMAT, save_model

    if src is not None and ckpt.source_format == MODEL_FORMAT:
        shutil.copyfile(src, dst)
    else:
        save_model(dst, ckpt.build_model("cpu"), style=ckpt.style, train_config=ckpt.train_config,
                   loss_net=ckpt.loss_net)


def load_source_checkpoint(path: Path):
    from styleengine.core.checkpoint import load_checkpoint

    return load_checkpoint(path)


def check_preset(ckpt) -> None:
    """A preset name promises an architecture (refit across styles relies on it): unknown names and names
    that contradict the stored widths/blocks are refused."""
    from styleengine.core.network import PRESETS

    arch = ckpt.arch
    if arch.preset == "custom":
        return
    if arch.preset not in PRESETS:
        raise StyleEngineError(f"unknown preset {arch.preset!r} in checkpoint; known: {', '.join(PRESETS)}, custom")
    want = PRESETS[arch.preset]
    if (tuple(arch.widths), arch.blocks) != (tuple(want.widths), want.blocks):
        raise StyleEngineError(f"checkpoint says preset {arch.preset!r} but its architecture is widths "
                               f"{list(arch.widths)}, {arch.blocks} blocks")


def build_bundle(checkpoint, output: str | os.PathLike | None = None, *, shapes=None, tensorrt: str | bool = "auto",
                 refit: bool = False, overwrite: bool = False, workspace: int | None = None,
                 opt_level: int | None = None, timing_cache: str | os.PathLike | None = None,
                 opset: int | None = None, exporter: str = "dynamo", validate: bool = True,
                 label: str | None = None) -> BuildResult:
    """Build a bundle from `checkpoint` (a path, or a loaded Checkpoint with `output` given).

    shapes: `--shape` specs for TensorRT profiles (see export.profiles); None = default 360p..1080p profile.
    tensorrt: "auto" (build plans when TensorRT and a GPU are here, else note why not), "off", "require".
    refit: build refittable plans (switch styles of the same preset by refitting weights).
    workspace: TensorRT workspace limit in MiB. opt_level: builder optimization level 0-5.
    timing_cache: TensorRT timing cache file (default: the user cache folder; shared by all styles).
    label: what the progress report calls the build (default: the output folder's name).
    """
    from styleengine.core.checkpoint import Checkpoint

    mode = _tensorrt_mode(tensorrt)
    profiles: list[Profile] = parse_shapes(shapes)  # bad shapes fail before anything is written
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if isinstance(checkpoint, Checkpoint):
        ckpt, src = checkpoint, None
        if output is None:
            raise StyleEngineError("build_bundle: output is required when passing a loaded Checkpoint")
    else:
        src = Path(checkpoint)
        ckpt = load_source_checkpoint(src)
    check_preset(ckpt)
    output = Path(output) if output is not None else default_output(src)
    _check_target(output, overwrite)

    trt_ok, trt_reason = (False, "TensorRT disabled (--tensorrt off)") if mode == "off" else tensorrt_build.probe()
    if mode == "require" and not trt_ok:
        raise StyleEngineError(f"cannot build a TensorRT plan: {trt_reason}")
    tensorrt_build.validate_options(workspace=workspace, opt_level=opt_level)  # bad options fail even without TRT

    steps = 3 + (2 if validate else 0) + (1 if trt_ok else 0)
    with atomic_dir(output, overwrite=overwrite) as tmp, progress(f"build {label or output.name}", steps, unit="step") as bar:
        _write_checkpoint(ckpt, src, tmp / CHECKPOINT)
        bar.update(advance=1, info="FP32 ONNX export")
        meta = model_metadata(ckpt)
        fp32 = export_onnx(ckpt, tmp / ONNX_FILES["fp32"], opset=opset, exporter=exporter, metadata=meta)
        bar.update(advance=1, info="FP16 ONNX")
        fp16 = export_fp16(fp32, tmp / ONNX_FILES["fp16"])
        bar.update(advance=1, info="parity vs torch" if validate else None)
        onnx_info = {}
        for precision, path in (("fp32", fp32), ("fp16", fp16)):
            m = read_metadata(path)
            onnx_info[precision] = {"file": path.name, "sha256": sha256_file(path), "opset": m.get("opset"),
                                    "exporter": m.get("exporter"), "bytes": path.stat().st_size}
        validation: dict[str, Any] = {}
        if validate:
            for precision, path in (("fp32", fp32), ("fp16", fp16)):
                res = onnx_parity(path, ckpt, precision=precision)
                bar.update(advance=1)
                validation[precision] = res
                if not res["ok"]:
                    raise StyleEngineError(f"{precision} ONNX does not match torch: max diff {res['max_abs_diff']} "
                                           f"uint8 levels > {res['tolerance']}; nothing was written")
        plans: list[Path] = []
        note = None
        built = []
        if trt_ok:
            bar.update(info="TensorRT plan (minutes)")
            try:
                built = tensorrt_build.build_plans(fp16, tmp / PLANS_DIR, profiles=profiles, refit=refit,
                                                   workspace=workspace, opt_level=opt_level, timing_cache=timing_cache)
            except StyleEngineError as exc:
                if mode == "require":
                    raise
                # auto: the validated ONNX models are still worth having; say exactly why there is no plan.
                trt_ok, trt_reason = False, f"TensorRT build failed ({exc})"
                shutil.rmtree(tmp / PLANS_DIR, ignore_errors=True)
            bar.update(advance=1)
        if built:
            plans = [p.plan for p in built]
            trt_info = {"built": True, "plans": [p.sidecar.name for p in built],
                        "profiles": [p.to_dict() for p in profiles], "refit": refit}
        else:
            note = (f"no TensorRT plan built: {trt_reason}; the engine runs the ONNX models "
                    f"(ONNX Runtime) and builds a plan on first use on a machine with TensorRT and a GPU")
            trt_info = {"built": False, "reason": trt_reason, "profiles": [p.to_dict() for p in profiles],
                        "refit": refit}
        manifest = bundle_manifest(ckpt, models={k: v["file"] for k, v in onnx_info.items()}, onnx=onnx_info,
                                   plans=[f"{PLANS_DIR}/{p.with_suffix('.json').name}" for p in plans],
                                   validation=validation, tensorrt=trt_info,
                                   files=file_entries(tmp, [CHECKPOINT, fp32.name, fp16.name]))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    final_plans = [output / PLANS_DIR / p.name for p in plans]
    log.debug("built bundle %s", output)
    return BuildResult(output, manifest, final_plans, note)
