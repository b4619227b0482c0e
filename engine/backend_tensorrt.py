"""TensorRT backend: runs the bundle's FP16 plan (TensorRT 10.x / 11.x name-based I/O API).

Per input shape, once: pick the optimization profile covering it (checking TensorRT accepted the switch),
`set_input_shape`, read the output shape from `context.get_tensor_shape` (never assumed), allocate page-locked
host buffers and device buffers, and bind them with `set_tensor_address`. Per call: copy into the page-locked
input, async H2D, `execute_async_v3` on our own non-default stream (TensorRT warns the default stream forces extra
device syncs), async D2H, stream sync; CUDA events time the three stages.

Precision: fp16 only (the plan is built from the FP16 ONNX); asking fp32 or int8 is a one-line error, so no caller
(a benchmark row, a stylize run) can label the FP16 plan as another precision. Device: `cuda:N`; the plan's
identity (GPU name, compute capability) and a first-use build use that device.

CUDA memory and streams come from engine/cuda_runtime.py (cuda-python, torch or pycuda: whichever is installed).
The plan comes from the TensorRTPlan loader (the bundle's, a cached one, or built once for this GPU). TrtRunner
takes the `tensorrt` module and the CUDA runtime as arguments, so the tests drive it with fakes.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from styleengine.core.bundle import INPUT_NAME, OUTPUT_NAME
from styleengine.core.errors import StyleEngineError
from styleengine.core.hostinfo import cuda_device_count
from styleengine.core.shapes import Profile, covering_profile

from .backend import Backend, ShapeLimits, device_index, device_kind, module_available
from .cuda_runtime import RUNTIMES, CudaRuntime, installed_runtimes, open_runtime
from .loaders import Loader, TensorRTPlan

MAX_SHAPES = 4  # buffer sets kept alive (alternating sizes don't re-allocate; memory stays bounded)


# --------------------------------------------------------------------------- pure-Python logic (tested)
def io_names(engine, trt) -> tuple[list[str], list[str]]:
    """(inputs, outputs) tensor names of an engine via the TRT 10+ name-based API."""
    inputs, outputs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
    return inputs, outputs


def profile_shapes(engine, name: str) -> list[Profile]:
    """Every optimization profile of input `name`, as (batch, H, W) profiles."""
    out = []
    for p in range(engine.num_optimization_profiles):
        lo, opt, hi = (tuple(int(d) for d in s)[:3] for s in engine.get_tensor_profile_shape(name, p))
        out.append(Profile(lo, opt, hi))
    return out


def choose_profile(profiles: list[Profile], shape: tuple[int, ...]) -> int:
    """Index of the smallest profile covering the NHWC `shape`, else a one-line error that names --max-size."""
    n, h, w = shape[0], shape[1], shape[2]
    best = covering_profile(profiles, n, h, w)
    if best is not None:
        return best
    if any(covering_profile([p], p.min[0], h, w) is not None for p in profiles):
        raise StyleEngineError(f"batch of {n} is outside the TensorRT plan's profiles (max batch "
                               f"{max(p.max[0] for p in profiles)})")
    largest = max(profiles, key=lambda p: p.max[1] * p.max[2]) if profiles else None
    limit = f" (largest {largest.max[2]}x{largest.max[1]})" if largest else ""
    raise StyleEngineError(f"image {w}x{h} is outside the TensorRT plan's shapes{limit}: use --max-size, or "
                           f"rebuild with `styleengine build --shape` covering it")


def shape_limits(profiles: list[Profile]) -> ShapeLimits:
    """What the Stylizer may send: padded up to the smallest minimum, refused above the largest maximum."""
    return ShapeLimits(min(p.min[1] for p in profiles), min(p.min[2] for p in profiles),
                       max(p.max[1] for p in profiles), max(p.max[2] for p in profiles))


class ShapeBuffers:
    """Page-locked host + device buffers for one input shape (what is allocated is released on failure)."""

    def __init__(self, cuda: CudaRuntime, in_shape, out_shape, in_dtype, out_dtype):
        self.cuda = cuda
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.host_in = self.host_out = self.dev_in = self.dev_out = None
        try:
            self.host_in = cuda.pinned(self.in_shape, in_dtype)
            self.host_out = cuda.pinned(self.out_shape, out_dtype)
            self.dev_in = cuda.alloc(self.host_in.nbytes)
            self.dev_out = cuda.alloc(self.host_out.nbytes)
        except BaseException:
            self.free()
            raise

    def free(self) -> None:
        for d in (self.dev_in, self.dev_out):
            if d is not None:
                self.cuda.free(d)
        for h in (self.host_in, self.host_out):
            if h is not None:
                self.cuda.free_pinned(h)
        self.host_in = self.host_out = self.dev_in = self.dev_out = None


class TrtRunner:
    """Runs one engine + execution context on uint8 NHWC batches. `trt` is the tensorrt module (or a fake)."""

    def __init__(self, trt, cuda: CudaRuntime, engine, context):
        self.trt, self.cuda, self.engine, self.context = trt, cuda, engine, context
        inputs, outputs = io_names(engine, trt)
        if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
            raise StyleEngineError(f"TensorRT plan has I/O {inputs}/{outputs}, expected [{INPUT_NAME!r}]/[{OUTPUT_NAME!r}]")
        self.in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(INPUT_NAME)))
        self.out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(OUTPUT_NAME)))
        if self.in_dtype != np.uint8 or self.out_dtype != np.uint8:
            raise StyleEngineError(f"TensorRT plan I/O dtypes are {self.in_dtype}/{self.out_dtype}, expected uint8")
        self.profiles = profile_shapes(engine, INPUT_NAME)
        if not self.profiles:
            raise StyleEngineError("TensorRT plan has no optimization profile for its input")
        self.profile = 0  # a new execution context starts on profile 0
        self.buffers: OrderedDict[tuple, ShapeBuffers] = OrderedDict()
        self._bound: tuple | None = None
        self.timings: dict[str, float] | None = None  # CUDA-event stage times of the last run (ms)
        # Our own non-default stream (checked before making it: a refused plan leaves nothing behind).
        self.stream = cuda.stream()
        self.handle = cuda.stream_handle(self.stream)
        self._events = [cuda.event() for _ in range(4)]

    def _prepare(self, shape: tuple[int, ...]) -> ShapeBuffers:
        """Profile, input shape, output shape and bound buffers for `shape`; allocates only for a new shape."""
        profile = choose_profile(self.profiles, shape)
        if profile != self.profile:
            if not self.context.set_optimization_profile_async(profile, self.handle):
                raise StyleEngineError(f"TensorRT refused to switch to optimization profile {profile}")
            self.profile = profile
            self._bound = None
        if self._bound == shape:
            return self.buffers[shape]
        self._bound = None  # from here the context's shape/addresses change: a failure must not leave it "bound"
        if not self.context.set_input_shape(INPUT_NAME, shape):
            raise StyleEngineError(f"TensorRT rejected input shape {shape}")
        out_shape = tuple(int(d) for d in self.context.get_tensor_shape(OUTPUT_NAME))
        if len(out_shape) != 4 or any(d < 0 for d in out_shape) or out_shape[0] != shape[0]:
            raise StyleEngineError(f"TensorRT gave output shape {out_shape} for input {shape}")
        if (out_shape[1] < shape[1] or out_shape[2] < shape[2] or out_shape[3] < 3):
            raise StyleEngineError(f"TensorRT gave output shape {out_shape} for input {shape} (smaller than the input)")
        bufs = self.buffers.get(shape)
        if bufs is not None and bufs.out_shape != out_shape:  # same input, other output (another profile)
            del self.buffers[shape]
            bufs.free()
            bufs = None
        if bufs is None:
            while len(self.buffers) >= MAX_SHAPES:
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
        cuda, ev, stream = self.cuda, self._events, self.stream
        bufs = self._prepare(tuple(batch.shape))
        np.copyto(bufs.host_in, batch)
        try:
            cuda.record(ev[0], stream)
            cuda.htod_async(bufs.dev_in, bufs.host_in, stream)
            cuda.record(ev[1], stream)
            if not self.context.execute_async_v3(self.handle):
                raise StyleEngineError("TensorRT execution failed (execute_async_v3 returned False)")
            cuda.record(ev[2], stream)
            cuda.dtoh_async(bufs.host_out, bufs.dev_out, stream)
            cuda.record(ev[3], stream)
        except BaseException:
            # Copies already queued read/write our page-locked buffers: let them finish before anyone reuses them.
            try:
                cuda.synchronize(stream)
            except Exception:
                pass
            self.timings = None
            raise
        cuda.synchronize(stream)
        h2d, comp, d2h = (cuda.elapsed_ms(ev[i], ev[i + 1]) for i in range(3))
        self.timings = {"h2d_ms": h2d, "compute_ms": comp, "d2h_ms": d2h, "gpu_ms": h2d + comp + d2h}
        n, h, w = batch.shape[:3]
        # The exported graph crops back to the input size; slicing keeps us right for a plan that pads.
        return np.array(bufs.host_out[:n, :h, :w, :3], copy=True)

    def prepare(self, shapes) -> None:
        """Choose profiles and bind buffers for these NHWC shapes ahead of timed work (the last stays bound)."""
        for shape in shapes:
            self._prepare(tuple(int(d) for d in shape))

    def close(self) -> None:
        for b in self.buffers.values():
            b.free()
        self.buffers.clear()
        self._bound = None


# --------------------------------------------------------------------------- the backend
class TensorRTBackend(Backend):
    name = "tensorrt"
    devices = ("cuda",)
    precisions = {"cuda": ("fp16",)}  # the plan is built from the FP16 ONNX (strongly typed); nothing else
    default_device = "cuda:0"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not module_available("tensorrt"):
            return False, "TensorRT is not installed (pip install 'styleengine[gpu]' on an NVIDIA machine)"
        bindings = installed_runtimes()
        if not bindings:
            return False, "no CUDA binding for the buffers (pip install cuda-python, or a CUDA build of torch)"
        if not cuda_device_count():
            return False, "no NVIDIA GPU found (TensorRT needs one: use --backend onnxruntime, or leave --backend out)"
        return True, "TensorRT + " + bindings[0] + " + GPU"

    @classmethod
    def available_for(cls, **options: Any) -> tuple[bool, str]:
        ok, why = cls.available()
        device = options.get("device")
        if ok and device not in (None, "auto") and device_kind(device) == "cuda":
            index, count = device_index(device), cuda_device_count()
            if index >= count:
                return False, f"no GPU {device} ({count} visible to the CUDA driver)"
        return ok, why

    def __init__(self, bundle, *, device: str | None = None, precision: str | None = None,
                 model: Loader | None = None, cuda_runtime: str | None = None, build: bool = True):
        if precision not in (None, "auto", "fp16"):
            # Refused here, so nothing (a benchmark row, a stylize run) can label the FP16 plan as another precision.
            raise StyleEngineError(f"the tensorrt backend runs fp16 only (its plan is built from the FP16 ONNX), "
                                   f"not {precision}; use the onnxruntime or torch backend for {precision}")
        if cuda_runtime is not None and cuda_runtime not in RUNTIMES:
            raise StyleEngineError(f"unknown CUDA runtime {cuda_runtime!r}; choose one of: {', '.join(RUNTIMES)}")
        if device is not None and device_kind(device) == "cuda":
            index = device_index(device)
        else:
            index = 0  # the base class refuses a non-CUDA device below
        super().__init__(bundle, device=device, precision=precision,
                         model=model if model is not None else TensorRTPlan(bundle, device_index=index, build=build))
        self.index = device_index(self.device)
        self.cuda_runtime = cuda_runtime
        self._runner: TrtRunner | None = None
        self._cuda: CudaRuntime | None = None
        self._engine = self._runtime = None
        self.plan: Path | None = None

    def _load(self) -> None:
        ok, why = self.available_for(device=self.device)
        if not ok:
            raise StyleEngineError(f"the tensorrt backend cannot run here: {why}")
        try:
            import tensorrt as trt
        except Exception as exc:  # driver/toolkit mismatches surface as many exception types
            raise StyleEngineError(f"TensorRT failed to import "
                                   f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        self._cuda = open_runtime(self.index, self.cuda_runtime)
        try:
            if isinstance(self.model, TensorRTPlan) and self.model.trt is None:
                self.model.trt = trt
            with self._cuda.activate():
                self.plan = self.model()
                logger = trt.Logger(trt.Logger.WARNING)
                self._runtime = trt.Runtime(logger)
                self._engine = self._runtime.deserialize_cuda_engine(self.plan.read_bytes())
                if self._engine is None:
                    raise StyleEngineError(f"{self.plan}: TensorRT could not deserialize the plan (see the log above)")
                context = self._engine.create_execution_context()
                if context is None:
                    raise StyleEngineError(f"{self.plan}: could not create a TensorRT execution context (GPU memory?)")
                try:
                    self._runner = TrtRunner(trt, self._cuda, self._engine, context)
                finally:
                    del context  # held by the runner, or dropped here (before the engine) when it was refused
        except BaseException:
            self._release()  # a half-loaded backend keeps nothing (base close() skips a backend that never loaded)
            raise

    def shape_limits(self) -> ShapeLimits:
        self.load()
        return shape_limits(self._runner.profiles)

    def max_batch_size(self) -> int | None:
        self.load()
        return max(p.max[0] for p in self._runner.profiles)

    def last_timings(self) -> dict[str, float] | None:
        """h2d / compute / d2h / total GPU milliseconds of the last infer (CUDA events on our stream)."""
        return self._runner.timings if self._runner else None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        # Make our device current: callers may run us from another thread (video pipelines).
        with self._cuda.activate():
            return self._runner.run(batch)

    def prepare(self, shapes: Iterable[tuple[int, ...]]) -> None:
        """Pick profiles and bind buffers for these (N, H, W, 3) shapes before timed work."""
        self.load()
        with self._cuda.activate():
            self._runner.prepare(shapes)

    def _close(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._cuda is not None:
            with self._cuda.activate():
                if self._runner is not None:
                    self._runner.close()
                # Destroy TRT objects (context with the runner, then engine, then runtime) while the device is current.
                self._runner = None
                self._engine = None
                self._runtime = None
            self._cuda.close()
            self._cuda = None
        self._runner = self._engine = self._runtime = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["plan"] = str(self.plan) if self.plan else None
        d["cuda_runtime"] = self._cuda.name if self._cuda else self.cuda_runtime
        return d
