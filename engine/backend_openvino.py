"""OpenVINO backend (the `openvino` package, Apache-2.0): the bundle's FP32 ONNX compiled for the CPU.

OpenVINO reads the ONNX directly and picks its kernels by the CPU's ISA (AVX2, AVX-512, AMX). The inference
precision is the one the hardware runs best unless asked: bf16 where the CPU has AMX-BF16 or AVX512-BF16
(OpenVINO's own default there), fp16 where it has AVX512-FP16 or is an Arm CPU with FP16 arithmetic only when
asked, fp32 elsewhere. Compiled models are cached (OpenVINO's CACHE_DIR under the styleengine cache), so the
second start of a style skips compilation. One infer request, LATENCY hint (one stream, all cores) by default:
video frames arrive one by one; the `hint="throughput"` option trades latency for batch throughput.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from styleengine.core.errors import StyleEngineError
from styleengine.core.hostinfo import cpu_flags, physical_cores
from styleengine.core.paths import cache_dir

from .backend import Backend, module_available
from .loaders import Loader

# Our precision names -> OpenVINO's INFERENCE_PRECISION_HINT values, and the capability each needs.
OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
CAPABILITY = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16"}
HINTS = ("latency", "throughput")


def best_precision(flags: frozenset[str] | None = None) -> str:
    """What this CPU runs fastest at full-enough fidelity: bf16 on AMX/AVX512-BF16, else fp32."""
    flags = cpu_flags() if flags is None else flags
    return "bf16" if {"amx_bf16", "avx512_bf16"} & flags else "fp32"


def _ov():
    try:
        import openvino
    except ImportError:
        raise StyleEngineError("the openvino backend needs openvino (pip install openvino)") from None
    return openvino


class OpenVinoBackend(Backend):
    name = "openvino"
    devices = ("cpu",)
    precisions = {"cpu": ("fp32", "bf16", "fp16")}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not module_available("openvino"):
            return False, "openvino is not installed (pip install openvino)"
        return True, f"CPU ({best_precision()} by default here)"

    def __init__(self, bundle, *, device: str | None = None, precision: str | None = None,
                 model: Loader | None = None, threads: int | None = None, hint: str = "latency",
                 cache: bool = True):
        if precision in (None, "auto"):
            precision = best_precision()
        super().__init__(bundle, device=device, precision=precision, model=model)
        if hint not in HINTS:
            raise StyleEngineError(f"openvino backend: unknown hint {hint!r} ({', '.join(HINTS)})")
        if threads is not None and int(threads) < 1:
            raise StyleEngineError(f"openvino backend: threads must be >= 1, got {threads}")
        self.threads, self.hint, self.cache = threads, hint, cache
        self._compiled = None
        self._request = None

    def _load(self) -> None:
        ov = _ov()
        core = ov.Core()
        caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        if CAPABILITY[self.precision] not in caps:
            raise StyleEngineError(f"openvino: this CPU cannot run {self.precision} (it offers "
                                   f"{', '.join(sorted(caps & set(CAPABILITY.values()))) or 'FP32'}); use "
                                   f"--precision fp32")
        if self.cache:
            core.set_property({"CACHE_DIR": str(cache_dir("openvino"))})
        config = {"INFERENCE_PRECISION_HINT": OV_PRECISION[self.precision],
                  "PERFORMANCE_HINT": self.hint.upper(),
                  "INFERENCE_NUM_THREADS": int(self.threads or physical_cores())}
        path = self.model()
        try:
            # A path (not a read model) lets OpenVINO load a cached compiled blob without parsing the ONNX.
            self._compiled = core.compile_model(str(path), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long multi-line texts
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StyleEngineError(f"openvino could not compile {path.name}: {first[:200]}") from None
        self._request = self._compiled.create_infer_request()
        self.inference_precision = str(self._compiled.get_property("INFERENCE_PRECISION_HINT"))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self._request.infer({0: batch})
        return np.array(self._request.get_output_tensor(0).data, copy=True)

    def _close(self) -> None:
        self._request = None
        self._compiled = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["threads"] = int(self.threads or physical_cores())
        d["hint"] = self.hint
        d["isa"] = sorted(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_fp16")
                          if f in cpu_flags())
        if self._compiled is not None:
            d["inference_precision"] = self.inference_precision
        return d
