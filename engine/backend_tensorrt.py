"""TensorRT backend: runs the bundle's FP16 plan with pycuda (TensorRT 10.x / 11.x name-based I/O API).

Per input shape, once: pick the optimization profile covering it, `set_input_shape`, read the output shape from
`context.get_tensor_shape` (never assumed), allocate page-locked host buffers and device buffers, and bind them
with `set_tensor_address`. Per call: copy into the page-locked input, async H2D, `execute_async_v3` on our own
non-default stream (TensorRT warns the default stream forces extra device syncs), async D2H, stream sync.

The plan comes from the bundle's plans/ folder (the first whose sidecar matches this GPU and TensorRT); when
none matches it is built on first use from model_fp16.onnx by the export stage's builder and stored beside the
bundle (or in the user cache when the bundle is read-only). Everything that does not touch the GPU lives in
TrtRunner/profile helpers that take the `tensorrt` and `pycuda.driver` modules as arguments, so the tests drive
them with fakes.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from styleengine.errors import StyleEngineError

from .backend import Backend, module_available
from .bundle import INPUT_NAME, OUTPUT_NAME
from .hardware import cuda_device_count

MAX_SHAPES = 4  # buffer sets kept alive (alternating sizes don't re-allocate; memory stays bounded)


# --------------------------------------------------------------------------- pure-Python logic (tested)
def io_names(engine, trt) -> tuple[list[str], list[str]]:
    """(inputs, outputs) tensor names of an engine via the TRT 10+ name-based API."""
    inputs, outputs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
    return inputs, outputs


def profile_shapes(engine, name: str) -> list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """[(min, opt, max)] NHWC shapes of `name` for every optimization profile."""
    out = []
    for p in range(engine.num_optimization_profiles):
        lo, opt, hi = engine.get_tensor_profile_shape(name, p)
        out.append((tuple(int(d) for d in lo), tuple(int(d) for d in opt), tuple(int(d) for d in hi)))
    return out


def choose_profile(profiles, shape: tuple[int, ...]) -> int:
    """Index of the smallest profile covering `shape`, else a one-line error that names --max-size."""
    best, best_vol = None, None
    for i, (lo, _opt, hi) in enumerate(profiles):
        if all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            vol = int(np.prod(hi))
            if best_vol is None or vol < best_vol:
                best, best_vol = i, vol
    if best is not None:
        return best
    n, h, w = shape[0], shape[1], shape[2]
    max_hw = max((hi[1] * hi[2], hi) for _lo, _opt, hi in profiles)[1] if profiles else None
    if profiles and any(h <= hi[1] and w <= hi[2] and h >= lo[1] and w >= lo[2] for lo, _o, hi in profiles):
        raise StyleEngineError(f"batch of {n} is outside the TensorRT plan's profiles (max batch "
                               f"{max(hi[0] for _l, _o, hi in profiles)})")
    limit = f" (largest {max_hw[2]}x{max_hw[1]})" if max_hw else ""
    raise StyleEngineError(f"image {w}x{h} is outside the TensorRT plan's shapes{limit}: use --max-size, or "
                           f"rebuild with `styleengine build --shape` covering it")


def shape_limits(profiles) -> tuple[int, int, int, int]:
    """(min_h, min_w, max_h, max_w) over all profiles: Stylizer pads below the minimum."""
    return (min(lo[1] for lo, _o, _h in profiles), min(lo[2] for lo, _o, _h in profiles),
            max(hi[1] for _l, _o, hi in profiles), max(hi[2] for _l, _o, hi in profiles))


class ShapeBuffers:
    """Page-locked host + device buffers for one input shape, bound to the context's tensors."""

    def __init__(self, cuda, in_shape, out_shape, in_dtype, out_dtype):
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.host_in = cuda.pagelocked_empty(self.in_shape, in_dtype)
        self.host_out = cuda.pagelocked_empty(self.out_shape, out_dtype)
        self.dev_in = cuda.mem_alloc(max(1, self.host_in.nbytes))
        self.dev_out = cuda.mem_alloc(max(1, self.host_out.nbytes))

    def free(self) -> None:
        for d in (self.dev_in, self.dev_out):
            free = getattr(d, "free", None)
            if free is not None:
                free()


class TrtRunner:
    """Runs one engine + execution context on uint8 NHWC batches. `trt` and `cuda` are the tensorrt and
    pycuda.driver modules (or fakes)."""

    def __init__(self, trt, cuda, engine, context, stream):
        self.trt, self.cuda, self.engine, self.context, self.stream = trt, cuda, engine, context, stream
        inputs, outputs = io_names(engine, trt)
        if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
            raise StyleEngineError(f"TensorRT plan has I/O {inputs}/{outputs}, expected [{INPUT_NAME!r}]/[{OUTPUT_NAME!r}]")
        self.in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(INPUT_NAME)))
        self.out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(OUTPUT_NAME)))
        if self.in_dtype != np.uint8 or self.out_dtype != np.uint8:
            raise StyleEngineError(f"TensorRT plan I/O dtypes are {self.in_dtype}/{self.out_dtype}, expected uint8")
        self.profiles = profile_shapes(engine, INPUT_NAME)
        self.profile = 0
        self.buffers: OrderedDict[tuple, ShapeBuffers] = OrderedDict()
        self._bound: tuple | None = None
        self.timings: dict[str, float] | None = None  # CUDA-event stage times of the last run (ms)
        self._ev: list | None = None

    def _events(self) -> list | None:
        if self._ev is None and hasattr(self.cuda, "Event"):
            self._ev = [self.cuda.Event() for _ in range(4)]
        return self._ev

    def _prepare(self, shape: tuple[int, ...]) -> ShapeBuffers:
        """Profile, input shape, output shape and bound buffers for `shape`; allocates only for a new shape."""
        profile = choose_profile(self.profiles, shape)
        if profile != self.profile:
            self.context.set_optimization_profile_async(profile, self.stream.handle)
            self.profile = profile
            self._bound = None
        if self._bound == shape:
            return self.buffers[shape]
        if not self.context.set_input_shape(INPUT_NAME, shape):
            raise StyleEngineError(f"TensorRT rejected input shape {shape}")
        out_shape = tuple(int(d) for d in self.context.get_tensor_shape(OUTPUT_NAME))
        if len(out_shape) != 4 or any(d < 0 for d in out_shape) or out_shape[0] != shape[0]:
            raise StyleEngineError(f"TensorRT gave output shape {out_shape} for input {shape}")
        bufs = self.buffers.get(shape)
        if bufs is None or bufs.out_shape != out_shape:
            if len(self.buffers) >= MAX_SHAPES:
                _, old = self.buffers.popitem(last=False)
                old.free()
            bufs = ShapeBuffers(self.cuda, shape, out_shape, self.in_dtype, self.out_dtype)
            self.buffers[shape] = bufs
        else:
            self.buffers.move_to_end(shape)
        self.context.set_tensor_address(INPUT_NAME, int(bufs.dev_in))
        self.context.set_tensor_address(OUTPUT_NAME, int(bufs.dev_out))
        self._bound = shape
        return bufs

    def run(self, batch: np.ndarray) -> np.ndarray:
        bufs = self._prepare(tuple(batch.shape))
        np.copyto(bufs.host_in, batch)
        ev = self._events()
        ev and ev[0].record(self.stream)
        self.cuda.memcpy_htod_async(bufs.dev_in, bufs.host_in, self.stream)
        ev and ev[1].record(self.stream)
        if not self.context.execute_async_v3(self.stream.handle):
            raise StyleEngineError("TensorRT execution failed (execute_async_v3 returned False)")
        ev and ev[2].record(self.stream)
        self.cuda.memcpy_dtoh_async(bufs.host_out, bufs.dev_out, self.stream)
        ev and ev[3].record(self.stream)
        self.stream.synchronize()
        if ev:
            h2d, comp, d2h = (ev[i + 1].time_since(ev[i]) for i in range(3))
            self.timings = {"h2d_ms": h2d, "compute_ms": comp, "d2h_ms": d2h, "gpu_ms": h2d + comp + d2h}
        n, h, w = batch.shape[:3]
        # The exported graph crops back to the input size; slicing keeps us right for a plan that pads.
        return np.array(bufs.host_out[:n, :h, :w, :3], copy=True)

    def close(self) -> None:
        for b in self.buffers.values():
            b.free()
        self.buffers.clear()
        self._bound = None


# --------------------------------------------------------------------------- plan discovery and checks
def find_plan(bundle, trt) -> tuple[Path | None, list[str]]:
    """The first plan in the bundle (or its cache copy) whose sidecar matches this GPU, this TensorRT and the
    bundle's FP16 ONNX -- checked BEFORE deserializing; plus why the others were rejected (said on rebuild)."""
    from .plan_sidecar import current_runtime, find_compatible_plan

    runtime = current_runtime(trt)
    if runtime is None:
        raise StyleEngineError("tensorrt backend: cannot identify this GPU (no pycuda device, no nvidia-smi)")
    onnx_sha = ((bundle.manifest.get("onnx") or {}).get("fp16") or {}).get("sha256")
    reasons: list[str] = []
    for folder in (bundle.plans_dir, _cache_plans_dir(bundle)):
        plan, rejected = find_compatible_plan(folder, runtime, onnx_sha256=onnx_sha)
        reasons += rejected
        if plan is not None:
            return plan, reasons
    return None, reasons


def _cache_plans_dir(bundle) -> Path:
    from .styles import cache_root

    key = (bundle.manifest.get("onnx") or {}).get("fp16", {}).get("sha256") or bundle.path.name
    return cache_root() / "plans" / str(key)[:24]


def build_plan_for(bundle) -> Path:
    """Build plans from the bundle's FP16 ONNX (export stage's builder); into the bundle, or the cache if
    the bundle folder is not writable. Returns the first plan."""
    try:
        from styleengine.export import tensorrt_build
        from styleengine.export.profiles import Profile, parse_shapes
    except ImportError as exc:
        raise StyleEngineError(f"no matching TensorRT plan and the builder is unavailable ({exc})") from None
    onnx = bundle.onnx("fp16") or bundle.onnx("fp32")
    if onnx is None:
        raise StyleEngineError(f"{bundle.path}: no ONNX model to build a TensorRT plan from")
    trt_info = bundle.manifest.get("tensorrt") or {}
    profiles = [Profile.from_dict(p) for p in trt_info.get("profiles") or []] or parse_shapes(None)
    out_dir = bundle.plans_dir if os.access(bundle.path, os.W_OK) else _cache_plans_dir(bundle)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"building TensorRT plan for {bundle.style_name} (once; a few minutes) in {out_dir}", file=sys.stderr,
          flush=True)
    built = tensorrt_build.build_plans(onnx, out_dir, profiles=profiles, refit=bool(trt_info.get("refit", False)))
    if not built:
        raise StyleEngineError("TensorRT builder produced no plan")
    return Path(built[0].plan)


# --------------------------------------------------------------------------- the backend
class TensorRTBackend(Backend):
    name = "tensorrt"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not module_available("tensorrt"):
            return False, "TensorRT is not installed (pip install 'styleengine[tensorrt]')"
        if not module_available("pycuda"):
            return False, "pycuda is not installed (needs the CUDA toolkit to build)"
        if not cuda_device_count():
            return False, "no NVIDIA GPU found"
        return True, "TensorRT + pycuda + GPU"

    def __init__(self, bundle, *, device=None, precision=None, build: bool = True, **options: Any):
        super().__init__(bundle, device=device or "cuda:0", precision=precision or "fp16", **options)
        self.build = build
        self._runner: TrtRunner | None = None
        self.plan: Path | None = None

    def load(self) -> "TensorRTBackend":
        if self.loaded:
            return self
        ok, why = self.available()
        if not ok:
            raise StyleEngineError(f"tensorrt backend unavailable: {why}")
        try:
            import pycuda.driver as cuda
            import tensorrt as trt

            cuda.init()
            index = int(str(self.device).split(":", 1)[1]) if ":" in str(self.device) else 0
            # The device's primary context: the one the CUDA runtime (TensorRT, torch, ONNX Runtime) uses, so
            # buffers and streams are valid for all of them (what pycuda.autoprimaryctx does, for any device).
            self._ctx = cuda.Device(index).retain_primary_context()
        except Exception as exc:  # driver/toolkit mismatches surface as many exception types
            raise StyleEngineError(f"tensorrt backend: CUDA/TensorRT init failed "
                                   f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        plan, reasons = find_plan(self.bundle, trt)
        if plan is None:
            for r in reasons:
                print(f"TensorRT plan rejected: {r}", file=sys.stderr, flush=True)
            if not self.build:
                raise StyleEngineError(f"{self.bundle.path}: no TensorRT plan for this GPU/TensorRT "
                                       f"({'; '.join(reasons) or 'none built'}); rebuild with `styleengine build`")
            plan = build_plan_for(self.bundle)
        self.plan = plan
        self._ctx.push()
        try:
            logger = trt.Logger(trt.Logger.WARNING)
            runtime = trt.Runtime(logger)
            engine = runtime.deserialize_cuda_engine(plan.read_bytes())
            if engine is None:
                raise StyleEngineError(f"{plan}: TensorRT could not deserialize the plan (see the log above)")
            context = engine.create_execution_context()
            if context is None:
                raise StyleEngineError(f"{plan}: could not create a TensorRT execution context (GPU memory?)")
            self._runtime, self._engine = runtime, engine
            self._runner = TrtRunner(trt, cuda, engine, context, cuda.Stream())
        finally:
            self._ctx.pop()
        self.loaded = True
        return self

    def shape_limits(self) -> tuple[int, int, int, int] | None:
        return shape_limits(self._runner.profiles) if self._runner else None

    def last_timings(self) -> dict[str, float] | None:
        """h2d / compute / d2h / total GPU milliseconds of the last infer (CUDA events on our stream)."""
        return self._runner.timings if self._runner else None

    def max_batch_size(self) -> int | None:
        return max(hi[0] for _lo, _opt, hi in self._runner.profiles) if self._runner else None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = self._ready(batch)
        # Push our context: callers may run us from another thread (video pipelines).
        self._ctx.push()
        try:
            return self._runner.run(batch)
        finally:
            self._ctx.pop()

    def close(self) -> None:
        if self._runner is not None:
            self._ctx.push()
            try:
                self._runner.close()
                # Destroy TRT objects while the context is still current.
                self._runner = None
                self._engine = None
                self._runtime = None
            finally:
                self._ctx.pop()
        super().close()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["plan"] = str(self.plan) if self.plan else None
        return d
