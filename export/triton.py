"""Triton Inference Server model repository for a bundle: the TensorRT plan(s) and the ONNX model.

    DIR/<name>_onnx/config.pbtxt      platform onnxruntime_onnx, TensorRT execution accelerator (FP16)
    DIR/<name>_onnx/1/model.onnx      the bundle's FP16 (or FP32) ONNX
    DIR/<name>_trt/config.pbtxt       platform tensorrt_plan (only when the bundle has plans)
    DIR/<name>_trt/1/<plan files>     cc_model_filenames picks the plan for the server GPU's compute capability

Both take uint8 RGB NHWC with -1 height/width (max_batch_size > 0, so dims exclude the batch), use the dynamic
batcher (it merges requests of equal H x W only) and an instance group. Other models in DIR are never touched;
our model folders are replaced only with overwrite=True and only when they were written by styleengine.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from styleengine.core.bundle import INPUT_NAME, OUTPUT_NAME, Bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_dir
from styleengine.core.plan_sidecar import read_sidecar
from styleengine.core.shapes import DEFAULT_PROFILE, Profile

MARKER = "# written by styleengine"
CONFIG = "config.pbtxt"


@dataclass
class TritonResult:
    repository: Path
    models: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def model_name(style: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", style).strip("_").lower()
    return slug or "style"


def _io_block() -> str:
    return (f'input [\n  {{\n    name: "{INPUT_NAME}"\n    data_type: TYPE_UINT8\n    format: FORMAT_NHWC\n'
            f'    dims: [ -1, -1, 3 ]\n  }}\n]\n'
            f'output [\n  {{\n    name: "{OUTPUT_NAME}"\n    data_type: TYPE_UINT8\n    dims: [ -1, -1, 3 ]\n  }}\n]\n')


def _batching_block(max_batch_size: int, queue_delay_us: int) -> str:
    preferred = [b for b in (2, 4, 8, 16, 32) if b <= max_batch_size]
    pref = f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]\n" if preferred else ""
    return f"dynamic_batching {{\n{pref}  max_queue_delay_microseconds: {int(queue_delay_us)}\n}}\n"


def _instances_block(instances: int, kind: str) -> str:
    return f"instance_group [\n  {{\n    count: {int(instances)}\n    kind: {kind}\n  }}\n]\n"


def _ort_trt_shape(b: int, h: int, w: int) -> str:
    return f"{INPUT_NAME}:{b}x{h}x{w}x3"  # ONNX Runtime TensorRT EP profile syntax "name:d0xd1..."


def onnx_config(name: str, *, max_batch_size: int = 8, instances: int = 1, precision: str = "fp16",
                workspace_mib: int = 4096, queue_delay_us: int = 500, warmup_hw: tuple[int, int] | None = (720, 1280),
                profile: Profile = DEFAULT_PROFILE) -> str:
    """config.pbtxt for the ONNX model on the onnxruntime backend with the TensorRT accelerator.

    An explicit TensorRT profile (batch 1..max_batch_size, the default 360p-1080p range) keeps ONNX Runtime from
    rebuilding its engine whenever a request has a new image size; parameter names are those the Triton
    onnxruntime backend accepts (it rejects unknown ones).
    """
    (_, h0, w0), (_, h1, w1), (_, h2, w2) = profile.min, profile.opt, profile.max
    shapes = (f'        parameters {{ key: "trt_profile_min_shapes" value: "{_ort_trt_shape(1, h0, w0)}" }}\n'
              f'        parameters {{ key: "trt_profile_opt_shapes" value: "{_ort_trt_shape(1, h1, w1)}" }}\n'
              f'        parameters {{ key: "trt_profile_max_shapes" value: "{_ort_trt_shape(int(max_batch_size), h2, w2)}" }}\n')
    text = (f'{MARKER}\nname: "{name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {int(max_batch_size)}\n'
            + _io_block() + _batching_block(max_batch_size, queue_delay_us) + _instances_block(instances, "KIND_GPU")
            + "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n      {\n"
              '        name: "tensorrt"\n'
              f'        parameters {{ key: "precision_mode" value: "{"FP16" if precision == "fp16" else "FP32"}" }}\n'
              f'        parameters {{ key: "max_workspace_size_bytes" value: "{int(workspace_mib) << 20}" }}\n'
              '        parameters { key: "trt_engine_cache_enable" value: "1" }\n'
              '        parameters { key: "trt_timing_cache_enable" value: "1" }\n'
              + shapes +
              "      }\n    ]\n  }\n}\n")
    if warmup_hw:
        # ORT builds its TensorRT engine lazily: warm up so the first user request is not the slow one.
        h, w = warmup_hw
        text += ('model_warmup [\n  {\n    name: "warmup"\n    batch_size: 1\n    inputs {\n'
                 f'      key: "{INPUT_NAME}"\n      value {{\n        data_type: TYPE_UINT8\n'
                 f'        dims: [ {h}, {w}, 3 ]\n        zero_data: true\n      }}\n    }}\n  }}\n]\n')
    return text


def plan_config(name: str, plans: dict[str, str], *, max_batch_size: int = 1, instances: int = 1,
                queue_delay_us: int = 500) -> str:
    """config.pbtxt for TensorRT plans; `plans` maps compute capability ("9.0") -> file name."""
    if not plans:
        raise StyleEngineError("no TensorRT plans to put in a Triton model")
    default = sorted(plans.items())[-1][1]
    cc = ",\n".join(f'  {{ key: "{k}" value: "{v}" }}' for k, v in sorted(plans.items())) + "\n"
    return (f'{MARKER}\nname: "{name}"\nplatform: "tensorrt_plan"\nmax_batch_size: {int(max_batch_size)}\n'
            f'default_model_filename: "{default}"\ncc_model_filenames [\n{cc}]\n'
            + _io_block() + _batching_block(max_batch_size, queue_delay_us) + _instances_block(instances, "KIND_GPU"))


def _ours_or_absent(folder: Path, overwrite: bool) -> None:
    if not folder.exists():
        return
    if not overwrite:
        raise StyleEngineError(f"Triton model exists (use --overwrite): {folder}")
    cfg = folder / CONFIG
    try:
        ours = cfg.is_file() and cfg.read_text(errors="replace").startswith(MARKER)
    except OSError:
        ours = False
    if not ours:
        raise StyleEngineError(f"refusing to overwrite {folder}: not a Triton model written by styleengine")


def _plans_by_cc(bundle: Bundle) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    """Newest plan per compute capability, with their sidecars."""
    by_cc: dict[str, tuple[str, Path, dict[str, Any]]] = {}
    if bundle.plans_dir.is_dir():
        for sc in sorted(bundle.plans_dir.glob("*.json")):
            data = read_sidecar(sc)
            if not data:
                continue
            plan = bundle.plans_dir / str(data.get("plan") or sc.with_suffix(".plan").name)
            cc = str((data.get("gpu") or {}).get("compute_capability", ""))
            if plan.is_file() and cc and (cc not in by_cc or str(data.get("created_at", "")) > by_cc[cc][0]):
                by_cc[cc] = (str(data.get("created_at", "")), plan, data)
    return {cc: v[1] for cc, v in by_cc.items()}, [v[2] for v in by_cc.values()]


def write_triton_repository(bundle: Bundle, repository: str | os.PathLike, *, name: str | None = None,
                            max_batch_size: int = 8, instances: int = 1, precision: str = "fp16",
                            overwrite: bool = False) -> TritonResult:
    """Add this bundle's models to the Triton model repository `repository` (created if missing)."""
    if not 1 <= int(max_batch_size) <= 1024:
        raise StyleEngineError(f"--max-batch-size {max_batch_size} out of range (1..1024)")
    if not 1 <= int(instances) <= 64:
        raise StyleEngineError(f"--instances {instances} out of range (1..64)")
    repo = Path(repository)
    if repo.exists() and not repo.is_dir():
        raise StyleEngineError(f"Triton repository is not a folder: {repo}")
    if not repo.parent.is_dir():
        raise StyleEngineError(f"output folder does not exist: {repo.parent}")
    base = model_name(name or bundle.style_name)
    onnx_src = bundle.onnx(precision)
    if onnx_src is None:
        raise StyleEngineError(f"{bundle.path}: bundle has no {precision} ONNX model")
    plans, sidecars = _plans_by_cc(bundle)
    onnx_dir, trt_dir = repo / f"{base}_onnx", repo / f"{base}_trt"
    _ours_or_absent(onnx_dir, overwrite)
    if plans:
        _ours_or_absent(trt_dir, overwrite)
    repo.mkdir(exist_ok=True)
    result = TritonResult(repo)


    with atomic_dir(onnx_dir, overwrite=overwrite) as tmp:
        (tmp / "1").mkdir()
        shutil.copyfile(onnx_src, tmp / "1" / "model.onnx")
        (tmp / CONFIG).write_text(onnx_config(onnx_dir.name, max_batch_size=max_batch_size, instances=instances,
                                              precision=precision))
    result.models.append(onnx_dir)

    if plans:
        # Triton batches up to max_batch_size; the plan's profiles must allow batch 1..max.
        plan_max = min(int(p["max"][0]) for sc in sidecars for p in sc.get("profiles") or [{"max": [1]}])
        plan_min = max(int(p["min"][0]) for sc in sidecars for p in sc.get("profiles") or [{"min": [1]}])
        if plan_min > 1:
            raise StyleEngineError("TensorRT plan profiles start above batch 1; Triton needs batch 1 (rebuild with --shape 1x...)")
        trt_batch = min(int(max_batch_size), plan_max)
        versions = sorted({str(sc.get("tensorrt_version")) for sc in sidecars})
        with atomic_dir(trt_dir, overwrite=overwrite) as tmp:
            (tmp / "1").mkdir()
            for plan in plans.values():
                shutil.copyfile(plan, tmp / "1" / plan.name)
            (tmp / CONFIG).write_text(plan_config(trt_dir.name, {cc: p.name for cc, p in plans.items()},
                                                  max_batch_size=trt_batch, instances=instances))
        result.models.append(trt_dir)
        result.notes.append(f"TensorRT plans need a Triton container with TensorRT {', '.join(versions)}"
                            + ("" if trt_batch > 1 else "; plan profiles allow batch 1 only (rebuild with "
                               "--shape 1x64x64:4x1080x1920:8x1920x1920 to batch)"))
    else:
        result.notes.append("no TensorRT plan in the bundle: wrote only the ONNX model (build on a GPU machine "
                            "with TensorRT to add a tensorrt_plan model)")
    return result
