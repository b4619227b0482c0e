"""engine/cuda_runtime.py: the three CUDA bindings behind one interface, each driven by a fake module.

Each fake keeps "device memory" of its own and queues async work (copies, event records) on the stream until the
stream is synchronized, as a GPU does; so a copy of the wrong bytes, to the wrong buffer, or a result read
before the synchronize shows up. The cuda-python fake uses the runtime API's calling convention (every call
returns (cudaError_t, *results)) with the names NVIDIA's TensorRT samples use.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import types

import numpy as np
import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.engine import cuda_runtime as cr

# ------------------------------------------------------------------------------------- shared fake GPU


class FakeGPU:
    """Device memory (address -> bytes) and streams whose work runs at synchronize."""

    def __init__(self, base=0x7F00_0000_0000):
        self.mem: dict[int, np.ndarray] = {}
        self.next = base
        self.clock = 0.0

    def alloc(self, nbytes):
        addr = self.next
        self.next += nbytes + 512
        self.mem[addr] = np.zeros(nbytes, np.uint8)
        return addr

    def view(self, addr, nbytes):
        for base, buf in self.mem.items():
            if base <= addr and addr + nbytes <= base + buf.nbytes:
                return buf[addr - base: addr - base + nbytes]
        raise AssertionError(f"{addr:#x}+{nbytes} is not inside a live device allocation")

    def tick(self):
        self.clock += 2.0
        return self.clock


class Queue:
    def __init__(self):
        self.pending = []
        self.syncs = 0

    def run(self):
        self.syncs += 1
        while self.pending:
            self.pending.pop(0)()


def pattern(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, shape).astype(dtype)


# ------------------------------------------------------------------------------------------- cuda-python


def fake_cudart(devices=2, fail=None):
    """A stand-in for cuda.bindings.runtime. `fail` maps a function name to the cudaError_t member it returns."""
    gpu = FakeGPU()
    fail = dict(fail or {})
    rt = types.SimpleNamespace(gpu=gpu, calls=[], host={}, current=0, fail=fail)

    class cudaError_t(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorInvalidValue = 1
        cudaErrorMemoryAllocation = 2
        cudaErrorInvalidDevice = 101
        cudaErrorNotReady = 600

    class cudaMemcpyKind(enum.IntEnum):
        cudaMemcpyHostToHost = 0
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaStream_t:  # cuda-python's handle types convert with int()
        def __init__(self, handle):
            self.handle, self.queue = handle, Queue()

        def __int__(self):
            return self.handle

    class cudaEvent_t:
        def __init__(self):
            self.t, self.destroyed = None, False

    rt.cudaError_t, rt.cudaMemcpyKind = cudaError_t, cudaMemcpyKind
    ok = cudaError_t.cudaSuccess
    rt.streams, rt.events = [], []

    def api(fn):
        def call(*args):
            rt.calls.append((fn.__name__, args))
            if fn.__name__ in fail:  # an error code, and placeholders for the results (as cuda-python returns)
                return (cudaError_t[fail[fn.__name__]],) + (fn.__defaults__[-1] if fn.__defaults__ else ())
            return fn(*args)

        setattr(rt, fn.__name__, call)
        return fn

    @api
    def cudaGetDeviceCount(_results=(0,)):
        return ok, devices

    @api
    def cudaSetDevice(index):
        if not 0 <= index < devices:
            return (cudaError_t.cudaErrorInvalidDevice,)
        rt.current = index
        return (ok,)

    @api
    def cudaGetDevice(_results=(0,)):
        return ok, rt.current

    @api
    def cudaMalloc(nbytes, _results=(0,)):
        return ok, gpu.alloc(nbytes)

    @api
    def cudaFree(ptr):
        if ptr:
            assert ptr in gpu.mem, "cudaFree of an unknown pointer"
            del gpu.mem[ptr]
        return (ok,)

    @api
    def cudaMallocHost(nbytes, _results=(0,)):
        buf = ctypes.create_string_buffer(nbytes)  # real host memory: the runtime views it with numpy
        rt.host[ctypes.addressof(buf)] = buf
        return ok, ctypes.addressof(buf)

    @api
    def cudaFreeHost(ptr):
        assert ptr in rt.host, "cudaFreeHost of an unknown pointer"
        del rt.host[ptr]
        return (ok,)

    @api
    def cudaStreamCreate(_results=(None,)):
        s = cudaStream_t(0x5000 + len(rt.streams))
        rt.streams.append(s)
        return ok, s

    @api
    def cudaStreamDestroy(stream):
        stream.destroyed = True
        return (ok,)

    @api
    def cudaStreamSynchronize(stream):
        stream.queue.run()
        return (ok,)

    @api
    def cudaMemcpyAsync(dst, src, count, kind, stream):
        assert isinstance(dst, int) and isinstance(src, int)
        if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
            dev = gpu.view(dst, count)
            stream.queue.pending.append(lambda: dev.__setitem__(slice(None), np.frombuffer(ctypes.string_at(src, count), np.uint8)))
        elif kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
            dev = gpu.view(src, count)
            stream.queue.pending.append(lambda: ctypes.memmove(dst, dev.ctypes.data, count))
        else:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (ok,)

    @api
    def cudaEventCreate(_results=(None,)):
        ev = cudaEvent_t()
        rt.events.append(ev)
        return ok, ev

    @api
    def cudaEventDestroy(event):
        event.destroyed = True
        return (ok,)

    @api
    def cudaEventRecord(event, stream):
        event.t = None
        stream.queue.pending.append(lambda: setattr(event, "t", gpu.tick()))
        return (ok,)

    @api
    def cudaEventElapsedTime(start, end, _results=(0.0,)):
        if start.t is None or end.t is None:
            return cudaError_t.cudaErrorNotReady, 0.0
        return ok, end.t - start.t

    return rt


def copy_round_trip(cuda, src, dst, handle, before_sync=None):
    """pinned src -> device -> pinned dst on one stream between two events, as the TensorRT runner does.
    Returns the device buffer and the stream."""
    dev = cuda.alloc(src.nbytes)
    stream = cuda.stream()
    assert cuda.stream_handle(stream) == handle
    start, end = cuda.event(), cuda.event()
    cuda.record(start, stream)
    cuda.htod_async(dev, src, stream)
    cuda.dtoh_async(dst, dev, stream)
    cuda.record(end, stream)
    assert not dst.any()  # nothing has run before the synchronize
    if before_sync:
        before_sync(start, end)
    cuda.synchronize(stream)
    assert np.array_equal(dst, src)
    assert cuda.elapsed_ms(start, end) == 2.0  # start to end, positive
    return dev, stream


def test_cudart_pinned_arrays_copies_and_events():
    rt = fake_cudart()
    cuda = cr.CudartRuntime(rt, 1)
    assert rt.current == 1 and ("cudaFree", (0,)) in rt.calls  # primary context made at open
    src = cuda.pinned((2, 3, 5), np.float32)
    dst = cuda.pinned((2, 3, 5), np.float32)
    assert src.shape == (2, 3, 5) and src.dtype == np.float32 and src.flags.writeable and src.flags.c_contiguous
    assert src.ctypes.data in rt.host  # the array IS the page-locked allocation, not a copy of it
    src[...] = pattern(src.shape, np.float32)
    dst[...] = 0

    def not_ready(start, end):
        with pytest.raises(StyleEngineError, match="cudaEventElapsedTime.*cudaErrorNotReady"):
            cuda.elapsed_ms(start, end)

    dev, _ = copy_round_trip(cuda, src, dst, 0x5000, not_ready)
    assert np.array_equal(rt.gpu.view(dev, src.nbytes).view(np.float32).reshape(src.shape), src)

    cuda.free_pinned(src)
    assert ("cudaFreeHost", (src.ctypes.data,)) in rt.calls
    cuda.free(dev)
    assert dev not in rt.gpu.mem
    rt.current = 0  # closing from a thread working on another device
    first = len(rt.calls)
    cuda.close()  # frees what is left, destroys streams and events, on its own device
    assert not rt.host and all(e.destroyed for e in rt.events) and all(s.destroyed for s in rt.streams)
    names = [c[0] for c in rt.calls[first:]]
    assert rt.calls[first + 1] == ("cudaSetDevice", (1,)) and names[-1] == "cudaSetDevice" and rt.current == 0
    assert names[2:-1] == ["cudaFreeHost", "cudaEventDestroy", "cudaEventDestroy", "cudaStreamDestroy"]


def test_cudart_partial_copy_moves_only_the_array_bytes():
    rt = fake_cudart()
    cuda = cr.CudartRuntime(rt, 0)
    small = cuda.pinned((4,), np.uint8)
    small[:] = [1, 2, 3, 4]
    dev = cuda.alloc(16)
    stream = cuda.stream()
    cuda.htod_async(dev, small, stream)
    cuda.synchronize(stream)
    assert list(rt.gpu.view(dev, 16)) == [1, 2, 3, 4] + [0] * 12


def test_cudart_errors_are_one_line_style_engine_errors():
    rt = fake_cudart(fail={"cudaMalloc": "cudaErrorMemoryAllocation"})
    cuda = cr.CudartRuntime(rt, 0)
    with pytest.raises(StyleEngineError) as info:
        cuda.alloc(1 << 40)
    msg = str(info.value)
    assert "cudaMalloc" in msg and "cudaErrorMemoryAllocation" in msg and "\n" not in msg
    with pytest.raises(StyleEngineError, match="no CUDA device 5"):
        cr.CudartRuntime(fake_cudart(devices=2), 5)
    rt = fake_cudart(fail={"cudaSetDevice": "cudaErrorInvalidDevice"})
    with pytest.raises(StyleEngineError, match="cudaSetDevice.*cudaErrorInvalidDevice"):
        cr.CudartRuntime(rt, 0)


def test_cudart_activate_selects_and_restores_the_device():
    rt = fake_cudart()
    cuda = cr.CudartRuntime(rt, 1)
    rt.current = 0  # another library on this thread works on device 0
    with cuda.activate():
        assert rt.current == 1
    assert rt.current == 0


# ------------------------------------------------------------------------------------------------- torch


def fake_torch(available=True, devices=1):
    gpu = FakeGPU()
    torch = types.SimpleNamespace(uint8="uint8", gpu=gpu, copies=[], current_stream=None, device_ctx=[])

    class Tensor:
        def __init__(self, array, device="cpu", addr=None, pinned=False):
            self.array, self.device, self.addr, self.pinned = array, device, addr, pinned

        def numel(self):
            return self.array.size

        def data_ptr(self):
            return self.addr if self.device != "cpu" else self.array.ctypes.data

        def numpy(self):
            assert self.device == "cpu"
            return self.array

        def __getitem__(self, item):
            sub = self.array[item]
            addr = None if self.addr is None else self.addr + (sub.ctypes.data - self.array.ctypes.data)
            return Tensor(sub, self.device, addr, self.pinned)

        def copy_(self, other, non_blocking=False):
            stream = torch.current_stream
            assert stream is not None, "copies must run on the runtime's stream"
            assert self.array.nbytes == other.array.nbytes
            torch.copies.append((other.device, self.device, non_blocking, other.pinned or self.pinned))
            dst, src = self.array, other.array
            stream.queue.pending.append(lambda: np.copyto(dst, src))
            return self

    def empty(n, dtype=None, pin_memory=False, device=None):
        assert dtype == "uint8"
        if device is not None:
            addr = gpu.alloc(n)
            return Tensor(gpu.mem[addr], "cuda", addr)
        return Tensor(np.zeros(n, np.uint8), "cpu", pinned=pin_memory)

    class Stream:
        def __init__(self, device):
            self.device, self.queue, self.cuda_stream = device, Queue(), 0x9000

        def synchronize(self):
            self.queue.run()

    @contextlib.contextmanager
    def stream_ctx(s):
        old, torch.current_stream = torch.current_stream, s
        try:
            yield
        finally:
            torch.current_stream = old

    @contextlib.contextmanager
    def device_ctx(d):
        torch.device_ctx.append(d)
        yield

    class Event:
        def __init__(self, enable_timing=False):
            assert enable_timing
            self.t = None

        def record(self, stream):
            stream.queue.pending.append(lambda: setattr(self, "t", gpu.tick()))

        def elapsed_time(self, end):
            assert self.t is not None and end.t is not None
            return end.t - self.t

    torch.empty = empty
    torch.from_numpy = lambda a: Tensor(a, "cpu")
    torch.device = lambda kind, index: (kind, index)
    torch.cuda = types.SimpleNamespace(is_available=lambda: available, device_count=lambda: devices, Stream=Stream,
                                       stream=stream_ctx, device=device_ctx, Event=Event)
    return torch


def test_torch_runtime_pinned_copies_and_events():
    torch = fake_torch()
    cuda = cr.TorchCudaRuntime(torch, 0)
    src, dst = cuda.pinned((3, 4, 3), np.uint8), cuda.pinned((3, 4, 3), np.uint8)
    assert src.shape == (3, 4, 3) and src.dtype == np.uint8
    f = cuda.pinned((5,), np.float16)
    assert f.shape == (5,) and f.dtype == np.float16
    src[...] = pattern(src.shape, np.uint8, 1)
    dev, stream = copy_round_trip(cuda, src, dst, 0x9000)
    assert np.array_equal(torch.gpu.mem[dev], src.reshape(-1))
    # both copies non-blocking from the pinned tensors themselves (so torch really copies asynchronously)
    assert torch.copies == [("cpu", "cuda", True, True), ("cuda", "cpu", True, True)]
    with cuda.activate():
        assert torch.device_ctx == [("cuda", 0)]
    cuda.free(dev)
    with pytest.raises(StyleEngineError, match="not a buffer"):
        cuda.htod_async(dev, src, stream)
    cuda.free_pinned(src)
    assert src.ctypes.data not in cuda._host


def test_torch_runtime_refuses_without_cuda_or_device():
    with pytest.raises(StyleEngineError, match="no CUDA"):
        cr.TorchCudaRuntime(fake_torch(available=False), 0)
    with pytest.raises(StyleEngineError, match="no CUDA device 1"):
        cr.TorchCudaRuntime(fake_torch(devices=1), 1)


# ------------------------------------------------------------------------------------------------ pycuda


def fake_pycuda(devices=1):
    gpu = FakeGPU()
    drv = types.SimpleNamespace(gpu=gpu, log=[], pinned=[])

    class DeviceAllocation:
        def __init__(self, n):
            self.addr, self.freed = gpu.alloc(n), False

        def __int__(self):
            return self.addr

        def free(self):
            self.freed = True

    class Context:
        def push(self):
            drv.log.append("push")

        def pop(self):
            drv.log.append("pop")

    class Device:
        @staticmethod
        def count():
            return devices

        def __init__(self, index):
            drv.log.append(("device", index))

        def retain_primary_context(self):
            return Context()

    class Stream:
        def __init__(self):
            self.queue, self.handle = Queue(), 0xABC

        def synchronize(self):
            self.queue.run()

    class Event:
        def __init__(self):
            self.t = None

        def record(self, stream):
            stream.queue.pending.append(lambda: setattr(self, "t", gpu.tick()))

        def time_since(self, other):  # pycuda: self.time_since(earlier) = ms from `earlier` to self
            return self.t - other.t

    def pagelocked_empty(shape, dtype):
        a = np.zeros(shape, dtype)
        drv.pinned.append(a)
        return a

    def memcpy_htod_async(dst, src, stream):
        dev = gpu.view(int(dst), src.nbytes)
        stream.queue.pending.append(lambda: dev.__setitem__(slice(None), src.reshape(-1).view(np.uint8)))

    def memcpy_dtoh_async(dst, src, stream):
        dev = gpu.view(int(src), dst.nbytes)
        stream.queue.pending.append(lambda: dst.reshape(-1).view(np.uint8).__setitem__(slice(None), dev))

    drv.init = lambda: drv.log.append("init")
    drv.Device, drv.Stream, drv.Event = Device, Stream, Event
    drv.pagelocked_empty, drv.mem_alloc = pagelocked_empty, DeviceAllocation
    drv.memcpy_htod_async, drv.memcpy_dtoh_async = memcpy_htod_async, memcpy_dtoh_async
    return drv


def test_pycuda_runtime_pinned_copies_and_events():
    drv = fake_pycuda()
    cuda = cr.PycudaRuntime(drv, 0)
    assert drv.log == ["init", ("device", 0)]
    with cuda.activate():
        src, dst = cuda.pinned((2, 2, 3), np.uint8), cuda.pinned((2, 2, 3), np.uint8)
        assert src.shape == (2, 2, 3) and src.dtype == np.uint8 and any(src is p for p in drv.pinned)
        src[...] = pattern(src.shape, np.uint8, 2)
        dev, _ = copy_round_trip(cuda, src, dst, 0xABC)
        cuda.free(dev)
        assert dev.freed
    assert drv.log[-2:] == ["push", "pop"]
    with pytest.raises(StyleEngineError, match="no CUDA device 3"):
        cr.PycudaRuntime(fake_pycuda(devices=1), 3)
    cuda.close()
    with pytest.raises(StyleEngineError, match="after close"), cuda.activate():
        pass


# --------------------------------------------------------------------------------------------- choosing


@pytest.fixture
def bindings(monkeypatch):
    """All three bindings 'installed'; each opener records the attempt. Tests set what each module gives."""
    tried = []
    state = {"cuda-bindings": ImportError("cuda-python (cuda-bindings) is not installed"),
             "torch": ImportError("No module named 'torch'"), "pycuda": ImportError("No module named 'pycuda'"),
             "installed": set(cr.RUNTIMES)}

    def opener(name):
        def get():
            tried.append(name)
            value = state[name]
            if isinstance(value, Exception):
                raise value
            return value

        return get

    monkeypatch.setattr(cr, "_cudart_module", opener("cuda-bindings"))
    monkeypatch.setattr(cr, "_torch_module", opener("torch"))
    monkeypatch.setattr(cr, "_pycuda_module", opener("pycuda"))
    monkeypatch.setattr(cr, "_installed", lambda name: name in state["installed"])
    return state, tried


def test_open_runtime_prefers_cuda_bindings(bindings):
    state, tried = bindings
    state["cuda-bindings"], state["torch"] = fake_cudart(), fake_torch()
    rt = cr.open_runtime(1)
    assert isinstance(rt, cr.CudartRuntime) and rt.index == 1 and tried == ["cuda-bindings"]


def test_open_runtime_falls_back_in_order(bindings):
    state, tried = bindings
    state["cuda-bindings"] = fake_cudart(fail={"cudaGetDeviceCount": "cudaErrorInvalidDevice"})  # driver too old...
    state["torch"] = fake_torch(available=False)
    state["pycuda"] = fake_pycuda()
    rt = cr.open_runtime(0)
    assert isinstance(rt, cr.PycudaRuntime) and tried == ["cuda-bindings", "torch", "pycuda"]
    tried.clear()
    state["torch"] = fake_torch()
    assert isinstance(cr.open_runtime(0), cr.TorchCudaRuntime) and tried == ["cuda-bindings", "torch"]


def test_open_runtime_reports_every_reason(bindings):
    state, tried = bindings
    state["torch"] = fake_torch(available=False)
    state["installed"] = {"cuda-bindings", "torch"}  # pycuda not installed: named, not imported
    with pytest.raises(StyleEngineError) as info:
        cr.open_runtime(0)
    msg = str(info.value)
    assert "\n" not in msg and tried == ["cuda-bindings", "torch"]
    parts = [msg.index(n + ":") for n in cr.RUNTIMES]
    assert parts == sorted(parts)  # in the order they were tried
    assert "cuda-bindings: cuda-python (cuda-bindings) is not installed" in msg
    assert "torch: torch has no CUDA here" in msg and "pycuda: not installed" in msg


def test_open_runtime_with_a_named_binding(bindings):
    state, tried = bindings
    state["cuda-bindings"], state["torch"] = fake_cudart(), fake_torch()
    assert isinstance(cr.open_runtime(0, "torch"), cr.TorchCudaRuntime) and tried == ["torch"]
    with pytest.raises(StyleEngineError, match="unknown CUDA runtime 'cupy'"):
        cr.open_runtime(0, "cupy")
    with pytest.raises(StyleEngineError, match=r"pycuda: No module named 'pycuda'\)$"):
        cr.open_runtime(0, "pycuda")


def test_installed_runtimes_is_ordered_and_cheap(monkeypatch):
    seen = []
    monkeypatch.setattr(cr, "module_available", lambda m: seen.append(m) or m in ("pycuda", "cuda.cudart"))
    assert cr.installed_runtimes() == ["cuda-bindings", "pycuda"]
    assert "torch" in seen  # probed by metadata only
