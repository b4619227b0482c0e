"""ONNX Runtime backend: CPU, CUDA (I/O binding) or TensorRT execution provider, same uint8 NHWC contract.

Execution providers (option `provider`, or from `device`):
  cpu       model_fp32.onnx (precision "fp32") or a statically quantized INT8 copy (precision "int8", built once from
            the FP32 model and cached); intra-op threads = physical cores, full graph optimization, sequential.
  cuda      model_fp16.onnx on the CUDA EP; inputs and outputs bound with I/O binding to device buffers that are
            allocated once per shape (no per-call allocation, one H2D and one D2H copy).
  tensorrt  model_fp16.onnx on ORT's TensorRT EP (CUDA EP and CPU as fallbacks for unsupported nodes), with TRT
            engine and timing caches under the styleengine cache folder, so only the first run per shape range
            pays the build.

ORT lists compiled-in providers even without a GPU, so after creating a session we check which providers it
actually got and refuse (clear message) instead of silently running a GPU request on the CPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from styleengine.errors import StyleEngineError

from .backend import Backend, module_available
from .bundle import INPUT_NAME, OUTPUT_NAME
from .hardware import cuda_device_count, physical_cores

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
# TensorRT EP optimization profile when the bundle manifest does not name shapes (H and W multiples of 4).
DEFAULT_TRT_PROFILE = {"min": (1, 64, 64, 3), "opt": (1, 720, 1280, 3), "max": (1, 2160, 3840, 3)}


def cache_dir() -> Path:
    from .styles import cache_root

    return cache_root()


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise StyleEngineError("the onnxruntime backend needs onnxruntime (pip install onnxruntime or onnxruntime-gpu)") from None
    return ort


def cpu_session_options(ort, threads: int | None = None, spinning: bool | None = None):
    """Session options tuned for CPU inference of a conv net on a small machine."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One conv chain: parallel (inter-op) execution has nothing to overlap and only adds thread contention.
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or env_threads() or physical_cores())
    so.inter_op_num_threads = 1
    # Spin-waiting workers burn a core between ops. This net's ops are milliseconds long, so spinning saves
    # little on an idle machine and costs a lot on a busy one (benchmarks/results/cpu_speed.json: ~15% faster
    # with spinning off under load), hence off unless asked for.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return so


def _profile_shapes(bundle) -> dict[str, tuple[int, ...]]:
    """The TRT EP profile (one per session): spanning the bundle's TensorRT profiles (manifest "tensorrt" ->
    "profiles", [batch, H, W] each), else DEFAULT_TRT_PROFILE."""
    profiles = ((bundle.manifest.get("tensorrt") or {}).get("profiles") or []) if isinstance(bundle.manifest, dict) else []
    try:
        mins = [tuple(int(v) for v in p["min"]) for p in profiles]
        opts = [tuple(int(v) for v in p["opt"]) for p in profiles]
        maxs = [tuple(int(v) for v in p["max"]) for p in profiles]
    except (KeyError, TypeError, ValueError):
        mins = []
    if not mins or any(len(s) != 3 for s in mins + opts + maxs):
        return dict(DEFAULT_TRT_PROFILE)
    lo = tuple(min(s[i] for s in mins) for i in range(3))
    hi = tuple(max(s[i] for s in maxs) for i in range(3))
    return {"min": (*lo, 3), "opt": (*opts[0], 3), "max": (*hi, 3)}


def _shape_str(shape) -> str:
    return f"{INPUT_NAME}:" + "x".join(str(int(d)) for d in shape)


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not (module_available("onnxruntime")):
            return False, "onnxruntime is not installed"
        return True, "CPU" + (" + GPU providers (NVIDIA GPU present)" if cuda_device_count() else "")

    def __init__(self, bundle, *, device=None, precision=None, provider: str | None = None,
                 threads: int | None = None, spinning: bool | None = None, device_id: int = 0,
                 io_binding: bool | None = None, **options: Any):
        super().__init__(bundle, device=device, precision=precision, **options)
        if provider is None:
            if device is None or str(device) == "cpu":
                provider = "cpu"
            elif str(device).startswith("cuda"):
                provider = "cuda"
            elif device == "tensorrt":
                provider = "tensorrt"
            else:
                raise StyleEngineError(f"onnxruntime backend: unknown device {device!r} (cpu, cuda)")
        if provider not in PROVIDERS:
            raise StyleEngineError(f"onnxruntime backend: unknown provider {provider!r} ({', '.join(PROVIDERS)})")
        self.provider = provider
        if ":" in str(device or ""):
            device_id = int(str(device).split(":", 1)[1])
        self.device_id = device_id
        self.device = "cpu" if provider == "cpu" else f"cuda:{device_id}"
        self.threads = threads
        self.spinning = spinning
        # GPU providers always bind device buffers; on the CPU it only avoids an output allocation per call.
        self.io_binding = provider != "cpu" if io_binding is None else bool(io_binding)
        self._session = None
        self._bound: dict[tuple, tuple] = {}

    # ------------------------------------------------------------------ load
    def _model_path(self) -> Path:
        if self.precision is None:
            self.precision = "fp32" if self.provider == "cpu" else "fp16"
        if self.precision == "int8":
            if self.provider != "cpu":
                raise StyleEngineError("onnxruntime backend: int8 is a CPU precision; GPUs use fp16")
            from .quantize import int8_model, int8_quality

            path = int8_model(self.bundle)
            self.int8_quality = int8_quality(self.bundle)
            return path
        if self.precision not in ("fp32", "fp16"):
            raise StyleEngineError(f"onnxruntime backend: unsupported precision {self.precision!r} (fp32, fp16, int8)")
        path = self.bundle.onnx(self.precision)
        if path is None and self.precision == "fp16":
            # An FP32-only bundle still runs on a GPU provider, just slower.
            path, self.precision = self.bundle.onnx("fp32"), "fp32"
        if path is None:
            raise StyleEngineError(f"{self.bundle.path}: bundle has no {self.precision} ONNX model")
        return path

    def _providers(self, model: Path) -> list:
        if self.provider == "cpu":
            return ["CPUExecutionProvider"]
        if not cuda_device_count():
            raise StyleEngineError(f"onnxruntime {self.provider} provider needs an NVIDIA GPU; none found")
        cuda_opts = {"device_id": self.device_id, "cudnn_conv_algo_search": "EXHAUSTIVE",
                     "do_copy_in_default_stream": "1"}
        providers: list = [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
        if self.provider == "tensorrt":
            from styleengine.fsutil import sha256_file

            # ORT names cached engines from the graph and model path, not the weights: one folder per model
            # content so a rebuilt bundle never picks up a stale engine. The timing cache is weight-independent
            # and shared by every style.
            timing = cache_dir() / "ort-trt"
            engines = timing / sha256_file(model)[:24]
            engines.mkdir(parents=True, exist_ok=True)
            prof = _profile_shapes(self.bundle)
            trt_opts = {
                "device_id": self.device_id,
                "trt_fp16_enable": self.precision == "fp16",
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": str(engines),
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": str(timing),
                "trt_profile_min_shapes": _shape_str(prof["min"]),
                "trt_profile_opt_shapes": _shape_str(prof["opt"]),
                "trt_profile_max_shapes": _shape_str(prof["max"]),
            }
            providers.insert(0, ("TensorrtExecutionProvider", trt_opts))
        return providers

    def load(self) -> "OnnxRuntimeBackend":
        if self.loaded:
            return self
        ort = _ort()
        wanted = PROVIDERS[self.provider]
        if wanted not in ort.get_available_providers():
            raise StyleEngineError(f"this onnxruntime build has no {wanted} (install onnxruntime-gpu)")
        model = self._model_path()
        providers = self._providers(model)
        so = cpu_session_options(ort, self.threads, self.spinning) if self.provider == "cpu" else ort.SessionOptions()
        if self.provider != "cpu":
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # errors only: the fallback warning is turned into our own message below
        try:
            self._session = ort.InferenceSession(str(model), sess_options=so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StyleEngineError(f"onnxruntime could not load {model.name} with {wanted}: {first[:200]}") from None
        got = self._session.get_providers()
        if wanted not in got:
            self._session = None
            raise StyleEngineError(f"onnxruntime could not start {wanted} (CUDA/cuDNN/TensorRT libraries missing?); "
                                   f"session got {', '.join(got)}")
        self.active_providers = got
        self.loaded = True
        return self

    # ----------------------------------------------------------------- infer
    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = self._ready(batch)
        if not self.io_binding:
            return self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return self._run_bound(batch)

    def _run_bound(self, batch: np.ndarray) -> np.ndarray:
        """Device-resident (GPU providers) input/output OrtValues per shape, allocated once and reused."""
        ort = _ort()
        key = batch.shape
        entry = self._bound.get(key)
        if entry is None:
            if len(self._bound) >= 8:
                self._bound.pop(next(iter(self._bound)))
            where, dev_id = ("cpu", 0) if self.provider == "cpu" else ("cuda", self.device_id)
            dev_in = ort.OrtValue.ortvalue_from_shape_and_type(key, np.uint8, where, dev_id)
            # The model crops back to the input size, so the output has the input's shape.
            dev_out = ort.OrtValue.ortvalue_from_shape_and_type(key, np.uint8, where, dev_id)
            binding = self._session.io_binding()
            binding.bind_ortvalue_input(INPUT_NAME, dev_in)
            binding.bind_ortvalue_output(OUTPUT_NAME, dev_out)
            entry = (binding, dev_in, dev_out)
            self._bound[key] = entry
        binding, dev_in, dev_out = entry
        dev_in.update_inplace(batch)  # host -> device copy into the bound buffer
        self._session.run_with_iobinding(binding)
        return np.array(dev_out.numpy(), copy=True)  # never hand out the reused buffer itself

    def shape_limits(self) -> tuple[int, int, int, int] | None:
        """TensorRT EP sessions only accept shapes inside their profile; CPU/CUDA take any size."""
        if self.provider != "tensorrt":
            return None
        prof = _profile_shapes(self.bundle)
        return prof["min"][1], prof["min"][2], prof["max"][1], prof["max"][2]

    def max_batch_size(self) -> int | None:
        return _profile_shapes(self.bundle)["max"][0] if self.provider == "tensorrt" else None

    def close(self) -> None:
        self._bound.clear()
        self._session = None
        super().close()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["provider"] = self.provider
        if self.provider == "cpu":
            d["threads"] = int(self.threads or env_threads() or physical_cores())
        if getattr(self, "int8_quality", None):
            d["int8_vs_fp32"] = self.int8_quality
        return d


def env_threads() -> int | None:
    """STYLEENGINE_THREADS overrides the intra-op thread count (e.g. on a box shared with other work)."""
    val = os.environ.get("STYLEENGINE_THREADS")
    return int(val) if val and val.isdigit() and int(val) > 0 else None
