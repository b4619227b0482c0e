"""ONNX Runtime backend: CPU, CUDA (I/O binding) or TensorRT execution provider, same uint8 NHWC contract.

Execution providers (option `provider`, else from `device`):
  cpu       the FP32 ONNX (precision "fp32"), or its INT8 copy (precision "int8", made once by the Int8Onnx
            loader); intra-op threads = physical cores, full graph optimization, sequential, no spinning.
  cuda      the FP16 ONNX on the CUDA EP; inputs and outputs bound with I/O binding to device buffers that are
            allocated once per shape (no per-call allocation, one H2D and one D2H copy).
  tensorrt  the FP16 ONNX on ORT's TensorRT EP (CUDA EP and CPU as fallbacks for unsupported nodes), with TRT
            engine and timing caches under the styleengine cache folder, so only the first run per shape range
            pays the build. Its profile bounds the shapes and the batch.

ORT lists compiled-in providers even without a GPU, so after creating a session we check which providers it
actually got and refuse (clear message) instead of silently running a GPU request on the CPU.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from styleengine.core.bundle import INPUT_NAME, OUTPUT_NAME
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import sha256_file
from styleengine.core.hostinfo import cuda_device_count, package_version, physical_cores
from styleengine.core.paths import cache_dir

from .backend import Backend, ShapeLimits, device_index, device_kind, module_available
from .loaders import Loader

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
# TensorRT EP optimization profile when the bundle manifest does not name shapes.
DEFAULT_TRT_PROFILE = {"min": (1, 64, 64, 3), "opt": (1, 720, 1280, 3), "max": (1, 2160, 3840, 3)}
# GPU providers without a profile (CUDA EP) refuse above ~8K UHD up front instead of failing in cuDNN.
GPU_MAX_PIXELS = 7680 * 4320


def _ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise StyleEngineError("the onnxruntime backend needs onnxruntime (pip install onnxruntime, or "
                               "onnxruntime-gpu on an NVIDIA machine)") from None
    return ort


def env_threads() -> int | None:
    """STYLEENGINE_THREADS overrides the intra-op thread count (e.g. on a box shared with other work)."""
    val = os.environ.get("STYLEENGINE_THREADS")
    return int(val) if val and val.isdigit() and int(val) > 0 else None


def cpu_session_options(ort, threads: int | None = None, spinning: bool | None = None):
    """Session options tuned for CPU inference of a conv net on a small machine."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One conv chain: parallel (inter-op) execution has nothing to overlap and only adds thread contention.
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = int(threads or env_threads() or physical_cores())
    so.inter_op_num_threads = 1
    # Spin-waiting workers burn a core between ops: little gain on an idle machine, a big loss beside a video
    # codec or other work (benchmarks/results/cpu_speed.json: ~15% faster with spinning off under load).
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return so


def profile_shapes(bundle) -> dict[str, tuple[int, ...]]:
    """The TRT EP profile (one per session): spanning the bundle's TensorRT profiles (manifest "tensorrt" ->
    "profiles", [batch, H, W] each), else DEFAULT_TRT_PROFILE."""
    profiles = (bundle.manifest.get("tensorrt") or {}).get("profiles") or []
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


def gpu_build_installed() -> bool:
    """The installed distribution is onnxruntime-gpu (the CPU-only `onnxruntime` has no CUDA/TensorRT EP)."""
    return package_version(["onnxruntime-gpu"]) is not None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    devices = ("cpu", "cuda")
    precisions = {"cpu": ("fp32", "int8", "fp16"), "cuda": ("fp16", "fp32")}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not module_available("onnxruntime"):
            return False, "onnxruntime is not installed (pip install onnxruntime)"
        gpu = cls.gpu_available()
        return True, "CPU" + (" + CUDA/TensorRT providers" if gpu[0] else f" only ({gpu[1]})")

    @classmethod
    def available_for(cls, **options: Any) -> tuple[bool, str]:
        gpu = options.get("provider") in ("cuda", "tensorrt") or device_kind(options.get("device")) == "cuda"
        return cls.gpu_available() if gpu else cls.available()

    @classmethod
    def gpu_available(cls) -> tuple[bool, str]:
        """Can the CUDA/TensorRT providers run here? Cheap: package metadata and the CUDA driver."""
        if not module_available("onnxruntime"):
            return False, "onnxruntime is not installed"
        if not gpu_build_installed():
            return False, "this onnxruntime build has no GPU providers (pip uninstall onnxruntime, then pip install onnxruntime-gpu)"
        if not cuda_device_count():
            return False, "no NVIDIA GPU found (use --device cpu)"
        return True, "onnxruntime-gpu + NVIDIA GPU"

    def __init__(self, bundle, *, device: str | None = None, precision: str | None = None,
                 model: Loader | None = None, provider: str | None = None, threads: int | None = None,
                 spinning: bool | None = None, io_binding: bool | None = None):
        if provider is not None and provider not in PROVIDERS:
            raise StyleEngineError(f"onnxruntime backend: unknown provider {provider!r} ({', '.join(PROVIDERS)})")
        if provider is None:
            provider = "cpu" if device_kind(device) == "cpu" else "cuda"
        if device is None:
            device = "cpu" if provider == "cpu" else "cuda:0"
        if (provider == "cpu") != (device_kind(device) == "cpu"):
            raise StyleEngineError(f"onnxruntime backend: provider {provider} does not run on {device}")
        super().__init__(bundle, device=device, precision=precision, model=model)
        self.provider = provider
        self.device_id = device_index(self.device)
        if provider != "cpu":
            self.device = f"cuda:{self.device_id}"
        self.threads = threads
        self.spinning = spinning
        # GPU providers always bind device buffers; on the CPU it only avoids an output allocation per call.
        self.io_binding = provider != "cpu" if io_binding is None else bool(io_binding)
        self._session = None
        self._bound: dict[tuple, tuple] = {}

    # ------------------------------------------------------------------ load
    def _providers(self, model: Path) -> list:
        if self.provider == "cpu":
            return ["CPUExecutionProvider"]
        cuda_opts = {"device_id": self.device_id, "cudnn_conv_algo_search": "EXHAUSTIVE",
                     "do_copy_in_default_stream": "1"}
        providers: list = [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
        if self.provider == "tensorrt":
            # ORT names cached engines from the graph and model path, not the weights: one folder per model
            # content so a rebuilt bundle never picks up a stale engine. The timing cache is weight-independent
            # and shared by every style.
            timing = cache_dir("ort-trt")
            engines = timing / sha256_file(model)[:24]
            engines.mkdir(parents=True, exist_ok=True)
            prof = profile_shapes(self.bundle)
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

    def _load(self) -> None:
        ort = _ort()
        wanted = PROVIDERS[self.provider]
        if wanted not in ort.get_available_providers():
            raise StyleEngineError(f"this onnxruntime build has no {wanted} (pip uninstall onnxruntime, then pip install onnxruntime-gpu)")
        if self.provider != "cpu":
            ok, why = self.gpu_available()
            if not ok:
                raise StyleEngineError(f"onnxruntime {self.provider} provider cannot run here: {why}")
        model = self.model()
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

    # ----------------------------------------------------------------- infer
    def _infer(self, batch: np.ndarray) -> np.ndarray:
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

    # ------------------------------------------------------------ capabilities
    def shape_limits(self) -> ShapeLimits:
        """TensorRT EP sessions only accept shapes inside their profile; the CUDA EP refuses above 8K; the CPU
        takes any size (the Stylizer checks memory)."""
        if self.provider == "tensorrt":
            prof = profile_shapes(self.bundle)
            return ShapeLimits(max(prof["min"][1], 8), max(prof["min"][2], 8), prof["max"][1], prof["max"][2])
        if self.provider == "cuda":
            return ShapeLimits(max_pixels=GPU_MAX_PIXELS)
        return ShapeLimits()

    def max_batch_size(self) -> int | None:
        return profile_shapes(self.bundle)["max"][0] if self.provider == "tensorrt" else None

    def _close(self) -> None:
        self._bound.clear()
        self._session = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["provider"] = self.provider
        if self.provider == "cpu":
            d["threads"] = int(self.threads or env_threads() or physical_cores())
        quality = getattr(self.model, "quality", None)
        if quality:
            d["int8_vs_fp32"] = quality
        return d
