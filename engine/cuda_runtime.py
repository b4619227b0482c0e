"""The few CUDA calls the TensorRT backend needs (page-locked host arrays, device buffers, a stream, async
copies, timing events, making the device current), over whichever Python CUDA binding is installed:

    cuda-bindings  NVIDIA's cuda-python runtime API (a wheel, no compiler; what TensorRT's samples use now)
    torch          a CUDA build of torch (its caching allocator, pinned tensors and streams)
    pycuda         needs the CUDA toolkit to build; kept for existing installs

`open_runtime(device_index)` picks the first that works, in that order (or the one named), and names every
binding's reason when none does. All of them bind the device's primary context, the one TensorRT, torch and
ONNX Runtime use, so buffers are valid for every library in the process. Each wrapper takes its module as an
argument, so the logic is tested with fakes (tests/engine/test_cuda_runtime.py).

Names of the cuda-python calls were checked against NVIDIA/TensorRT samples/python/common_runtime.py
(cudaMallocHost/cudaMalloc/cudaStreamCreate/cudaMemcpyAsync/cudaStreamSynchronize; every call returns
(cudaError_t, *results)).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
from typing import Any, Iterator

import numpy as np

from styleengine.core.errors import StyleEngineError

from .backend import module_available

RUNTIMES = ("cuda-bindings", "torch", "pycuda")


class CudaRuntime:
    """Interface: see the module doc. Device buffers are opaque objects whose int() is the device address.
    Arrays from pinned() may be handed back to free_pinned() (otherwise they live until close())."""

    name = "?"

    def activate(self) -> contextlib.AbstractContextManager:
        """Make the device (and its primary context) current on this thread for the duration."""
        return contextlib.nullcontext()

    def stream(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def synchronize(self, stream: Any) -> None: ...
    def pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray: ...
    def alloc(self, nbytes: int) -> Any: ...
    def free(self, buffer: Any) -> None: ...
    def htod_async(self, dst: Any, src: np.ndarray, stream: Any) -> None: ...
    def dtoh_async(self, dst: np.ndarray, src: Any, stream: Any) -> None: ...
    def event(self) -> Any: ...
    def record(self, event: Any, stream: Any) -> None: ...
    def elapsed_ms(self, start: Any, end: Any) -> float: ...

    def free_pinned(self, array: np.ndarray) -> None:
        """Release a page-locked array from pinned() early (default: it lives until garbage-collected)."""

    def close(self) -> None:
        pass


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(tuple(int(d) for d in shape), dtype=np.int64)) * np.dtype(dtype).itemsize


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ------------------------------------------------------------------------------------------ cuda-bindings
def _cudart_module():
    for name in ("cuda.bindings.runtime", "cuda.cudart"):  # cuda-python >= 12.8, and the older layout
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("cuda-python (cuda-bindings) is not installed")


class CudartRuntime(CudaRuntime):
    """cuda-python's runtime API: every call returns (error, *results); a non-success error is a one-line
    StyleEngineError naming the call."""

    name = "cuda-bindings"

    def __init__(self, cudart: Any, device_index: int = 0):
        self.rt, self.index = cudart, int(device_index)
        self._host: dict[int, int] = {}  # host address of a pinned array -> pointer from cudaMallocHost
        self._device: set[int] = set()  # live cudaMalloc pointers
        self._streams: list[Any] = []
        self._events: list[Any] = []
        count = self.call(self.rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if not 0 <= self.index < int(count):
            raise StyleEngineError(f"no CUDA device {self.index} ({count} visible to the CUDA runtime)")
        self.call(self.rt.cudaSetDevice(self.index), "cudaSetDevice")
        self.call(self.rt.cudaFree(0), "cudaFree")  # creates (retains) the primary context now, not on first copy

    def call(self, result: Any, what: str = "CUDA call") -> Any:
        result = result if isinstance(result, tuple) else (result,)
        err, rest = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            name = getattr(err, "name", None) or str(err)
            raise StyleEngineError(f"CUDA runtime error in {what} on device {self.index}: {name}")
        return rest[0] if len(rest) == 1 else (rest or None)

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        previous = self.call(self.rt.cudaGetDevice(), "cudaGetDevice")
        if int(previous) != self.index:
            self.call(self.rt.cudaSetDevice(self.index), "cudaSetDevice")
        try:
            yield
        finally:
            if int(previous) != self.index:  # leave the thread's device as the caller had it
                self.rt.cudaSetDevice(int(previous))

    def stream(self) -> Any:
        stream = self.call(self.rt.cudaStreamCreate(), "cudaStreamCreate")
        self._streams.append(stream)
        return stream

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def synchronize(self, stream: Any) -> None:
        self.call(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        size = _nbytes(shape, dtype)
        ptr = int(self.call(self.rt.cudaMallocHost(max(1, size)), "cudaMallocHost"))
        raw = (ctypes.c_uint8 * max(1, size)).from_address(ptr)
        arr = np.frombuffer(raw, dtype=np.uint8, count=size).view(dtype).reshape(tuple(shape))
        self._host[arr.ctypes.data] = ptr
        return arr

    def free_pinned(self, array: np.ndarray) -> None:
        ptr = self._host.pop(array.ctypes.data, None)
        if ptr is not None:
            self.call(self.rt.cudaFreeHost(ptr), "cudaFreeHost")

    def alloc(self, nbytes: int) -> Any:
        ptr = int(self.call(self.rt.cudaMalloc(max(1, int(nbytes))), "cudaMalloc"))
        self._device.add(ptr)
        return ptr

    def free(self, buffer: Any) -> None:
        ptr = int(buffer)
        if ptr in self._device:
            self._device.discard(ptr)
            self.call(self.rt.cudaFree(ptr), "cudaFree")

    def htod_async(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.call(self.rt.cudaMemcpyAsync(int(dst), src.ctypes.data, src.nbytes, kind, stream), "cudaMemcpyAsync")

    def dtoh_async(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.call(self.rt.cudaMemcpyAsync(dst.ctypes.data, int(src), dst.nbytes, kind, stream), "cudaMemcpyAsync")

    def event(self) -> Any:
        event = self.call(self.rt.cudaEventCreate(), "cudaEventCreate")
        self._events.append(event)
        return event

    def record(self, event: Any, stream: Any) -> None:
        self.call(self.rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(self.call(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def close(self) -> None:
        """Release whatever is still held (streams, events, buffers) with our device current; errors here are
        ignored (shutdown), the caller's device is restored."""
        err, previous = (tuple(self.rt.cudaGetDevice()) + (None,))[:2]
        self.rt.cudaSetDevice(self.index)
        for ptr in list(self._device):
            self.rt.cudaFree(ptr)
        for ptr in list(self._host.values()):
            self.rt.cudaFreeHost(ptr)
        for ev in self._events:
            self.rt.cudaEventDestroy(ev)
        for st in self._streams:
            self.rt.cudaStreamDestroy(st)
        self._device.clear()
        self._host.clear()
        self._events.clear()
        self._streams.clear()
        if err == self.rt.cudaError_t.cudaSuccess and previous is not None and int(previous) != self.index:
            self.rt.cudaSetDevice(int(previous))


# --------------------------------------------------------------------------------------------------- torch
def _torch_module():
    import torch

    return torch


class TorchCudaRuntime(CudaRuntime):
    """torch's CUDA: device buffers from its caching allocator, pinned tensors viewed as numpy."""

    name = "torch"

    def __init__(self, torch: Any, device_index: int = 0):
        if not torch.cuda.is_available():
            raise StyleEngineError("torch has no CUDA here (CPU-only build or no GPU)")
        count = int(torch.cuda.device_count())
        if not 0 <= int(device_index) < count:
            raise StyleEngineError(f"no CUDA device {device_index} ({count} visible to torch)")
        self.torch, self.device = torch, torch.device("cuda", int(device_index))
        self._dev: dict[int, Any] = {}  # device address -> uint8 tensor (keeps the allocation alive)
        self._host: dict[int, Any] = {}  # host address of a pinned array -> its pinned uint8 tensor

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        with self.torch.cuda.device(self.device):
            yield

    def stream(self) -> Any:
        return self.torch.cuda.Stream(self.device)

    def stream_handle(self, stream: Any) -> int:
        return int(stream.cuda_stream)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        t = self.torch.empty(max(1, _nbytes(shape, dtype)), dtype=self.torch.uint8, pin_memory=True)
        arr = t.numpy()[: _nbytes(shape, dtype)].view(np.dtype(dtype)).reshape(tuple(shape))
        self._host[arr.ctypes.data] = t
        return arr

    def free_pinned(self, array: np.ndarray) -> None:
        self._host.pop(array.ctypes.data, None)

    def alloc(self, nbytes: int) -> Any:
        t = self.torch.empty(max(1, int(nbytes)), dtype=self.torch.uint8, device=self.device)
        self._dev[int(t.data_ptr())] = t
        return int(t.data_ptr())

    def free(self, buffer: Any) -> None:
        self._dev.pop(int(buffer), None)

    def _device_view(self, address: Any, nbytes: int) -> Any:
        try:
            t = self._dev[int(address)]
        except KeyError:
            raise StyleEngineError(f"torch CUDA runtime: {int(address):#x} is not a buffer from alloc()") from None
        if nbytes > t.numel():
            raise StyleEngineError(f"torch CUDA runtime: copy of {nbytes} bytes into a {t.numel()}-byte buffer")
        return t[:nbytes]

    def _host_view(self, array: np.ndarray) -> Any:
        """The pinned tensor behind `array` (so torch copies asynchronously), else a tensor over its bytes."""
        t = self._host.get(array.ctypes.data)
        if t is not None and array.flags.c_contiguous:
            return t[: array.nbytes]
        return self.torch.from_numpy(np.ascontiguousarray(array).reshape(-1).view(np.uint8))

    def htod_async(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        with self.torch.cuda.stream(stream):
            self._device_view(dst, src.nbytes).copy_(self._host_view(src), non_blocking=True)

    def dtoh_async(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        if not dst.flags.c_contiguous:
            raise StyleEngineError("torch CUDA runtime: the host destination must be C-contiguous")
        with self.torch.cuda.stream(stream):
            self._host_view(dst).copy_(self._device_view(src, dst.nbytes), non_blocking=True)

    def event(self) -> Any:
        return self.torch.cuda.Event(enable_timing=True)

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end))

    def close(self) -> None:
        self._dev.clear()
        self._host.clear()


# -------------------------------------------------------------------------------------------------- pycuda
def _pycuda_module():
    import pycuda.driver as cuda

    return cuda


class PycudaRuntime(CudaRuntime):
    """pycuda on the device's primary context (what pycuda.autoprimaryctx does, for any device index)."""

    name = "pycuda"

    def __init__(self, cuda: Any, device_index: int = 0):
        self.cuda = cuda
        cuda.init()
        count = int(cuda.Device.count())
        if not 0 <= int(device_index) < count:
            raise StyleEngineError(f"no CUDA device {device_index} ({count} visible to pycuda)")
        self.ctx = cuda.Device(int(device_index)).retain_primary_context()

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        if self.ctx is None:
            raise StyleEngineError("pycuda runtime used after close()")
        self.ctx.push()
        try:
            yield
        finally:
            self.ctx.pop()

    def stream(self) -> Any:
        return self.cuda.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def pinned(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(tuple(shape), np.dtype(dtype))

    def alloc(self, nbytes: int) -> Any:
        return self.cuda.mem_alloc(max(1, int(nbytes)))

    def free(self, buffer: Any) -> None:
        free = getattr(buffer, "free", None)
        if free is not None:
            free()

    def htod_async(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        self.cuda.memcpy_htod_async(dst, src, stream)

    def dtoh_async(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        self.cuda.memcpy_dtoh_async(dst, src, stream)

    def event(self) -> Any:
        return self.cuda.Event()

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(end.time_since(start))  # pycuda: end.time_since(start) = ms from start to end

    def close(self) -> None:
        self.ctx = None  # the primary context is released when pycuda's Context object goes away


# ------------------------------------------------------------------------------------------------ choosing
_PROBES = {"cuda-bindings": ("cuda.bindings", "cuda.cudart"), "torch": ("torch",), "pycuda": ("pycuda",)}
_INSTALL = {"cuda-bindings": "pip install cuda-python", "torch": "a CUDA build of torch",
            "pycuda": "pip install pycuda"}


def _installed(name: str) -> bool:
    return any(module_available(m) for m in _PROBES[name])


def installed_runtimes() -> list[str]:
    """The CUDA bindings installed here (cheap: no import), in order of preference."""
    return [name for name in RUNTIMES if _installed(name)]


def _open(name: str, device_index: int) -> CudaRuntime:
    if name == "cuda-bindings":
        return CudartRuntime(_cudart_module(), device_index)
    if name == "torch":
        return TorchCudaRuntime(_torch_module(), device_index)
    return PycudaRuntime(_pycuda_module(), device_index)


def open_runtime(device_index: int = 0, prefer: str | None = None) -> CudaRuntime:
    """The first binding (cuda-bindings, torch, pycuda) that opens the device, or `prefer` alone. When none
    does: a one-line error with every binding's reason."""
    if prefer is not None and prefer not in RUNTIMES:
        raise StyleEngineError(f"unknown CUDA runtime {prefer!r}; choose one of: {', '.join(RUNTIMES)}")
    reasons = []
    for name in [prefer] if prefer else RUNTIMES:
        if not _installed(name):
            reasons.append(f"{name}: not installed ({_INSTALL[name]})")
            continue
        try:
            return _open(name, device_index)
        except Exception as exc:  # broken package, no driver, no such device: try the next binding
            reasons.append(f"{name}: {_first_line(exc)}")
    raise StyleEngineError(f"no CUDA binding could open GPU {device_index} (" + "; ".join(reasons) + ")")
