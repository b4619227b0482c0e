"""`--backend auto` and friends: which backends to try for a request, in which order, and opening the first that
loads. Every skipped candidate is reported with its reason (the logger), so a slow choice is never silent.

GPU order: TensorRT (own plan) > ONNX Runtime TensorRT EP > ONNX Runtime CUDA EP > torch CUDA FP16.
CPU with --backend auto: chosen by measurement per machine, style and size class (engine/auto_cpu.py).
A forced --precision on the CPU: int8 -> ONNX Runtime; bf16/fp16 -> OpenVINO; fp32 -> ONNX Runtime, OpenVINO,
torch in that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from styleengine.core.bundle import Bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.hostinfo import cuda_device_count
from styleengine.core.log import log

from .auto_cpu import AutoCpuBackend
from .backend import REGISTRY, Backend, create_backend, device_kind, get_backend

BACKEND_CHOICES = ("auto", *REGISTRY)
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class Candidate:
    backend: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        opts = self.options
        parts = [opts.get("provider") and f"{opts['provider']} EP", opts.get("device"), opts.get("precision")]
        inner = ", ".join(str(p) for p in parts if p)
        return f"{self.backend} ({inner})" if inner else self.backend


def check_request(backend: str, device: str | None, precision: str | None) -> tuple[str | None, str | None]:
    """Validate the three choices; returns (device, precision) with "auto" as None."""
    if backend not in BACKEND_CHOICES:
        raise StyleEngineError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_CHOICES)}")
    precision = None if precision in (None, "auto") else precision
    if precision is not None and precision not in PRECISION_CHOICES:
        raise StyleEngineError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}")
    device = None if device in (None, "auto") else str(device)
    if device is not None:
        device_kind(device)  # validates
        if device_kind(device) == "cuda" and not cuda_device_count():
            raise StyleEngineError(f"--device {device}: no NVIDIA GPU found (use --device cpu or leave it out)")
    return device, precision


def gpu_candidates(device: str | None, precision: str | None) -> list[Candidate]:
    dev = device or "cuda:0"
    prec = {"precision": precision} if precision else {}
    out = []
    if precision in (None, "fp16"):
        out.append(Candidate("tensorrt", {"device": dev}))
    out += [Candidate("onnxruntime", {"provider": "tensorrt", "device": dev, **prec}),
            Candidate("onnxruntime", {"provider": "cuda", "device": dev, **prec}),
            Candidate("torch", {"device": dev, **prec})]
    return out


def cpu_candidates(precision: str | None) -> list[Candidate]:
    if precision is None:
        return [Candidate("auto", {"device": "cpu"})]
    names = {"int8": ("onnxruntime",), "bf16": ("openvino",), "fp16": ("openvino",)}.get(
        precision, ("onnxruntime", "openvino", "torch"))
    return [Candidate(name, {"device": "cpu", "precision": precision}) for name in names]


def candidates(backend: str = "auto", *, device: str | None = None, precision: str | None = None) -> list[Candidate]:
    """The (backend, options) to try in order for the request."""
    device, precision = check_request(backend, device, precision)
    gpu = cuda_device_count() > 0 and device != "cpu"
    out: list[Candidate] = []
    if gpu and (device is None or device_kind(device) == "cuda") and precision not in ("int8", "bf16"):
        out += gpu_candidates(device, precision)
    if device is None or device == "cpu":
        out += cpu_candidates(precision)
    if backend == "auto":
        return out
    named = [c for c in out if c.backend == backend]
    if (device is None or device == "cpu") and "cpu" in get_backend(backend).devices:
        # a named backend on the CPU, at its own default precision if none asked
        cpu = {"device": "cpu", **({"precision": precision} if precision else {})}
        named = [c for c in named if c.options.get("device") != "cpu"] + [Candidate(backend, cpu)]
    # Nothing fits (e.g. tensorrt without a GPU): still one candidate, so the backend itself says why not.
    return named or [Candidate(backend, {k: v for k, v in (("device", device), ("precision", precision)) if v})]


def open_backend(bundle: Bundle, backend: str = "auto", *, device: str | None = None, precision: str | None = None,
                 options: dict[str, Any] | None = None) -> Backend:
    """Construct and load the best backend for `bundle` under the constraints; logs the choice and the reasons
    faster candidates were skipped. `options` go to the backend (named backends only; unknown ones are errors)."""
    if options and backend == "auto":
        raise StyleEngineError("backend options need a named --backend (they differ between backends)")
    skipped: list[str] = []
    tried = candidates(backend, device=device, precision=precision)
    for cand in tried:
        cls = AutoCpuBackend if cand.backend == "auto" else get_backend(cand.backend)
        ok, why = cls.available_for(**cand.options)
        if not ok:
            skipped.append(f"{cand.label}: {why}")
            continue
        try:
            be = (AutoCpuBackend(bundle, **cand.options) if cand.backend == "auto"
                  else create_backend(cand.backend, bundle, **cand.options, **(options or {})))
            be.load()
        except StyleEngineError as exc:
            if backend != "auto" and len(tried) == 1:
                raise
            skipped.append(f"{cand.label}: {exc}")
            continue
        except Exception as exc:  # a broken GPU stack must not stop the fallback to the next backend
            skipped.append(f"{cand.label}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        for s in skipped:
            log.info("skipped %s", s)
        if cand.backend == "auto":
            log.info("backend: auto (the fastest CPU runtime at full fidelity, measured on the first frame)")
        else:
            log.info("backend: %s", label(be))
        return be
    what = "--backend auto" if backend == "auto" else f"the {backend} backend"
    raise StyleEngineError(f"{what} cannot run here: " + "; ".join(skipped))


def label(be: Backend) -> str:
    d = be.describe()
    parts = [d.get("provider") and f"{d['provider']} EP", d.get("device"), d.get("precision")]
    if d.get("threads"):
        parts.append(f"{d['threads']} threads")
    q = d.get("int8_vs_fp32")
    if q:
        parts.append(f"INT8 vs FP32: PSNR {q['psnr_db']} dB, max diff {q['max_abs_diff']}")
    return f"{be.name} ({', '.join(str(p) for p in parts if p)})"
