"""`--backend auto` and friends: try backends fastest-first and keep the first that loads.

Order: TensorRT (own plan) > ONNX Runtime TensorRT EP > ONNX Runtime CUDA EP > torch CUDA FP16 > the fastest CPU
path. On the CPU that is ONNX Runtime INT8 (benchmarks/results/cpu_speed*.json: ~2.2x eager torch per thread,
~4x at default threads; quantized once per style in seconds, its measured PSNR vs FP32 printed), then ONNX Runtime
FP32 (~1.5x per thread), then torch FP32 where onnxruntime is missing. The choice (and why faster ones were
skipped) goes to stderr.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from styleengine.errors import StyleEngineError

from .backend import REGISTRY, Backend, get_backend
from .hardware import cuda_device_count

BACKEND_CHOICES = ("auto", *REGISTRY)
PRECISION_CHOICES = ("auto", "fp32", "fp16", "int8")
# The CPU precisions `auto` tries with ONNX Runtime, fastest first: INT8 has a small, measured quality cost
# (39-46 dB PSNR vs FP32 on the built-ins and a random johnson net, printed on stderr) for ~1.5x FP32's speed.
CPU_PRECISIONS = ("int8", "fp32")


def candidates(backend: str = "auto", *, device: str | None = None, precision: str | None = None) -> list[tuple[str, dict]]:
    """(backend name, constructor kwargs) in the order to try them."""
    if backend not in BACKEND_CHOICES:
        raise StyleEngineError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_CHOICES)}")
    precision = None if precision in (None, "auto") else precision
    if precision is not None and precision not in PRECISION_CHOICES:
        raise StyleEngineError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}")
    want_cpu = device is not None and str(device) == "cpu"
    want_gpu = device is not None and str(device).startswith("cuda")
    gpu = cuda_device_count() > 0 and not want_cpu
    if want_gpu and not gpu:
        raise StyleEngineError(f"--device {device}: no NVIDIA GPU found (use --device cpu or leave it out)")
    if device is not None and not (want_cpu or want_gpu):
        raise StyleEngineError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    if precision == "int8":
        want_cpu, gpu = True, False  # INT8 is our CPU path
    out: list[tuple[str, dict]] = []
    dev = {"device": device} if device else {}
    prec = {"precision": precision} if precision else {}
    if gpu:
        if precision in (None, "fp16"):
            out.append(("tensorrt", dict(dev)))
        gpu_dev = device or "cuda:0"
        out.append(("onnxruntime", {"provider": "tensorrt", "device": gpu_dev, **prec}))
        out.append(("onnxruntime", {"provider": "cuda", "device": gpu_dev, **prec}))
        out.append(("torch", {"device": device or "cuda", **prec}))
    if not want_gpu:
        for cpu_precision in (precision,) if precision else CPU_PRECISIONS:
            out.append(("onnxruntime", {"provider": "cpu", "precision": cpu_precision}))
        if precision != "int8":
            out.append(("torch", {"device": "cpu", "precision": precision or "fp32"}))
    if backend != "auto":
        out = [c for c in out if c[0] == backend]
        if not out:
            raise StyleEngineError(f"backend {backend} cannot run with device={device} precision={precision}")
    return out


def label(be: Backend) -> str:
    d = be.describe()
    parts = [d.get("provider") and f"{d['provider']} EP", d.get("device"), d.get("precision")]
    if d.get("threads"):
        parts.append(f"{d['threads']} threads")
    q = d.get("int8_vs_fp32")
    if q:
        parts.append(f"INT8 vs FP32: PSNR {q['psnr_db']} dB, max diff {q['max_abs_diff']}")
    return f"{be.name} ({', '.join(str(p) for p in parts if p)})"


def open_backend(bundle, backend: str = "auto", *, device: str | None = None, precision: str | None = None,
                 log: Callable[[str], None] | None = None, **options: Any) -> Backend:
    """Construct and load the best backend for `bundle` under the constraints; logs the choice."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    skipped: list[str] = []
    for name, kwargs in candidates(backend, device=device, precision=precision):
        cls = get_backend(name)
        ok, why = cls.available()
        if not ok:
            skipped.append(f"{name}: {why}")
            continue
        be = cls(bundle, **kwargs, **options)
        try:
            be.load()
        except StyleEngineError as exc:
            skipped.append(f"{name}{' ' + kwargs['provider'] if 'provider' in kwargs else ''}: {exc}")
            continue
        except Exception as exc:  # a broken GPU stack must not stop the fallback to the next backend
            skipped.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        if skipped and backend == "auto" and cuda_device_count():
            log("skipped faster backends: " + "; ".join(skipped))
        log(f"backend: {label(be)}")
        return be
    raise StyleEngineError(f"no usable backend for --backend {backend}: " + "; ".join(skipped))
