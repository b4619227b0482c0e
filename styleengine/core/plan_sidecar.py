"""TensorRT plan sidecars: what a plan was built with, and whether this machine can load it (pure Python).

Every `plans/<name>.plan` has `plans/<name>.json`:

    {"format": "styleengine.plan/1", "plan": "<name>.plan", "plan_sha256": ..., "plan_bytes": ...,
     "tensorrt_version": "10.13.3.9", "gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"},
     "precision": "fp16", "typing": "strong" | "weak", "refit": bool, "profiles": [{"min", "opt", "max"}],
     "hardware_compatibility": "none" | "ampere_plus", "version_compatible": bool,
     "source_onnx": "model_fp16.onnx", "source_onnx_sha256": ..., "builder": {...}, "created_by", "created_at"}

`check_sidecar` runs BEFORE deserializing: a plan from another TensorRT build, another GPU architecture or an
older model is reported with a one-line reason (the caller rebuilds) instead of crashing in the runtime.
Importable without torch, tensorrt or pycuda.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fsutil import atomic_path, sha256_file
from .hostinfo import cuda_device, gpu_info
from .shapes import Profile, covering_profile

PLAN_FORMAT = "styleengine.plan/1"
SIDECAR_SUFFIX = ".json"


@dataclass(frozen=True)
class RuntimeInfo:
    """The TensorRT build and GPU a plan would be loaded with."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"


@dataclass
class Compatibility:
    ok: bool
    reason: str = ""  # one line; why not (ok=False) or a caveat (ok=True)
    warnings: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok


def sidecar_path(plan: str | os.PathLike) -> Path:
    return Path(plan).with_suffix(SIDECAR_SUFFIX)


def read_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar dict, or None when missing/unreadable (callers treat that as incompatible)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_sidecar(plan: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write `data` (plus format) beside `plan`, atomically."""
    path = sidecar_path(plan)
    payload = {"format": PLAN_FORMAT, **data}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _cc_major(cc: str) -> int:
    try:
        return int(str(cc).split(".")[0])
    except ValueError:
        return -1


def check_sidecar(sidecar: dict[str, Any] | None, runtime: RuntimeInfo, *, onnx_sha256: str | None = None,
                  plan_file: str | os.PathLike | None = None, verify_hash: bool = True) -> Compatibility:
    """Can `runtime` load the plan this sidecar describes? Never touches TensorRT.

    TensorRT plans are tied to the exact TensorRT build (unless built version-compatible) and to the GPU's
    compute capability (unless built hardware-compatible). This is an equality test of the recorded build
    identity, not a feature check, so comparing the version strings for equality is right here.
    """
    if not sidecar:
        return Compatibility(False, "plan has no readable sidecar (unknown origin)")
    if sidecar.get("format") != PLAN_FORMAT:
        return Compatibility(False, f"unknown plan sidecar format {sidecar.get('format')!r}")
    built_trt = str(sidecar.get("tensorrt_version", ""))
    gpu = sidecar.get("gpu") or {}
    built_cc, built_name = str(gpu.get("compute_capability", "")), str(gpu.get("name", ""))
    warnings: list[str] = []
    if built_trt != runtime.tensorrt_version:
        if not sidecar.get("version_compatible"):
            return Compatibility(False, f"plan built with TensorRT {built_trt or '?'}, this machine has "
                                        f"{runtime.tensorrt_version}")
        warnings.append(f"version-compatible plan from TensorRT {built_trt} (lean runtime; may be slower)")
    if built_cc != runtime.compute_capability:
        hc = str(sidecar.get("hardware_compatibility", "none")).lower()
        if not (hc == "ampere_plus" and _cc_major(built_cc) >= 8 and _cc_major(runtime.compute_capability) >= 8):
            return Compatibility(False, f"plan built for {built_name or '?'} (sm {built_cc or '?'}), this GPU is "
                                        f"{runtime.gpu_name} (sm {runtime.compute_capability})")
        warnings.append(f"hardware-compatible plan from sm {built_cc}")
    elif built_name and built_name != runtime.gpu_name:
        warnings.append(f"plan tuned on {built_name}, running on {runtime.gpu_name} (same architecture; may be slower)")
    if onnx_sha256 is not None and sidecar.get("source_onnx_sha256") != onnx_sha256:
        return Compatibility(False, "plan was built from a different ONNX model (stale)")
    if plan_file is not None:
        p = Path(plan_file)
        if not p.is_file():
            return Compatibility(False, f"plan file missing: {p.name}")
        want_bytes = sidecar.get("plan_bytes")
        if want_bytes is not None and p.stat().st_size != int(want_bytes):
            return Compatibility(False, f"plan file {p.name} is truncated or replaced (size differs from sidecar)")
        if verify_hash and sidecar.get("plan_sha256"):
            if sha256_file(p) != sidecar["plan_sha256"]:
                return Compatibility(False, f"plan file {p.name} does not match its sidecar hash (corrupt)")
    return Compatibility(True, "; ".join(warnings), warnings)


def check_plan(plan: str | os.PathLike, runtime: RuntimeInfo, *, onnx_sha256: str | None = None,
               verify_hash: bool = True) -> Compatibility:
    """check_sidecar for a plan file on disk (reads plan.json beside it)."""
    return check_sidecar(read_sidecar(sidecar_path(plan)), runtime, onnx_sha256=onnx_sha256, plan_file=plan,
                         verify_hash=verify_hash)


def find_compatible_plan(plans_dir: str | os.PathLike, runtime: RuntimeInfo, *, onnx_sha256: str | None = None,
                         height: int | None = None, width: int | None = None, batch: int = 1,
                         refit: bool | None = None) -> tuple[Path | None, list[str]]:
    """First plan in `plans_dir` this runtime can load (and whose profiles cover the size, when given).

    Returns (plan path or None, reasons the others were rejected) so callers can say why they rebuild.
    """
    d = Path(plans_dir)
    rejected: list[str] = []
    if not d.is_dir():
        return None, rejected
    for sc in sorted(d.glob(f"*{SIDECAR_SUFFIX}")):
        data = read_sidecar(sc)
        plan = d / str((data or {}).get("plan") or sc.with_suffix(".plan").name)
        res = check_sidecar(data, runtime, onnx_sha256=onnx_sha256, plan_file=plan)
        if not res.ok:
            rejected.append(f"{plan.name}: {res.reason}")
            continue
        if refit is not None and bool(data.get("refit")) != refit:
            rejected.append(f"{plan.name}: refit={bool(data.get('refit'))}")
            continue
        if height is not None and width is not None and not profiles_cover(data.get("profiles") or [], batch, height, width):
            rejected.append(f"{plan.name}: no profile covers {batch}x{height}x{width}")
            continue
        return plan, rejected
    return None, rejected


def profiles_cover(profiles: list[dict[str, Any]], batch: int, height: int, width: int) -> bool:
    try:
        parsed = [Profile.from_dict(p) for p in profiles]
    except (KeyError, TypeError, ValueError):
        return False
    return covering_profile(parsed, batch, height, width) is not None


def current_gpu(device: int = 0) -> tuple[str, str] | None:
    """(name, compute capability "M.m") of CUDA device `device`, or None. Asks the CUDA driver, then nvidia-smi
    (mapping the index through CUDA_VISIBLE_DEVICES)."""
    found = cuda_device(device)
    if found is not None:
        return found
    gpus = gpu_info()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    index = device
    if visible:
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if device >= len(ids) or not ids[device].isdigit():
            return None if device >= len(ids) else _by_uuid(gpus, ids[device])
        index = int(ids[device])
    for g in gpus:
        if str(g.get("index")) == str(index):
            return str(g["name"]), str(g["compute_capability"])
    return None


def _by_uuid(gpus: list[dict[str, Any]], ident: str) -> tuple[str, str] | None:
    # nvidia-smi rows carry no UUID in hostinfo.gpu_info; with UUID-style CUDA_VISIBLE_DEVICES use the only GPU.
    return (str(gpus[0]["name"]), str(gpus[0]["compute_capability"])) if len(gpus) == 1 else None


def current_runtime(trt_module: Any = None, device: int = 0) -> RuntimeInfo | None:
    """RuntimeInfo of this machine (imports tensorrt unless given), or None without TensorRT or a GPU."""
    if trt_module is None:
        try:
            import tensorrt as trt_module  # noqa: PLC0415
        except Exception:
            return None
    gpu = current_gpu(device)
    if gpu is None:
        return None
    return RuntimeInfo(str(getattr(trt_module, "__version__", "")), gpu[0], gpu[1])
