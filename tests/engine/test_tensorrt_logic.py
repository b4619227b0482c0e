"""The TensorRT backend's pure-Python logic, driven by fake `tensorrt` and `pycuda.driver` modules.

The fakes follow the TRT 10/11 name-based API (num_io_tensors, get_tensor_name/mode/dtype,
get_tensor_profile_shape, set_input_shape, get_tensor_shape, set_tensor_address, execute_async_v3) and pycuda's
pagelocked_empty / mem_alloc / memcpy_*_async / Stream. The "engine" inverts pixels through fake device memory,
so a wrong buffer, address or copy order shows up in the output. Real TensorRT runs are marked `tensorrt`.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from styleengine.engine import backend_tensorrt as bt
from styleengine.errors import StyleEngineError


class FakeDevicePtr:
    heap: dict[int, np.ndarray] = {}
    next_addr = 0x1000

    def __init__(self, nbytes):
        self.addr = FakeDevicePtr.next_addr
        FakeDevicePtr.next_addr += nbytes + 256
        FakeDevicePtr.heap[self.addr] = np.zeros(nbytes, np.uint8)
        self.freed = False

    def __int__(self):
        return self.addr

    def free(self):
        self.freed = True


class FakeEvent:
    clock = 0.0

    def record(self, stream):
        assert stream.handle == 7
        FakeEvent.clock += 1.5
        self.t = FakeEvent.clock

    def time_since(self, other):
        return self.t - other.t


class FakeCuda:
    Event = FakeEvent

    def __init__(self):
        self.allocs = []
        self.pinned = []
        self.copies = []

    def pagelocked_empty(self, shape, dtype):
        a = np.empty(shape, dtype)
        self.pinned.append(a)
        return a

    def mem_alloc(self, nbytes):
        p = FakeDevicePtr(nbytes)
        self.allocs.append(p)
        return p

    def memcpy_htod_async(self, dev, host, stream):
        assert any(host is p for p in self.pinned), "host source must be page-locked"
        FakeDevicePtr.heap[int(dev)][: host.nbytes] = host.reshape(-1).view(np.uint8)
        self.copies.append("htod")

    def memcpy_dtoh_async(self, host, dev, stream):
        assert any(host is p for p in self.pinned), "host destination must be page-locked"
        host.reshape(-1).view(np.uint8)[:] = FakeDevicePtr.heap[int(dev)][: host.nbytes]
        self.copies.append("dtoh")


def fake_trt():
    trt = types.SimpleNamespace()
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.uint8 = "UINT8"
    trt.float32 = "FLOAT"
    trt.nptype = lambda t: {"UINT8": np.uint8, "FLOAT": np.float32}[t]
    return trt


class FakeEngine:
    def __init__(self, profiles, dtype="UINT8", names=("input", "output")):
        self.profiles = profiles
        self.dtype = dtype
        self.names = names
        self.num_io_tensors = 2
        self.num_optimization_profiles = len(profiles)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return "INPUT" if name == self.names[0] else "OUTPUT"

    def get_tensor_dtype(self, name):
        return self.dtype

    def get_tensor_profile_shape(self, name, profile):
        assert name == "input"
        return self.profiles[profile]


class FakeContext:
    """Output = 255 - input, computed from the bound device addresses (like a real enqueue)."""

    def __init__(self):
        self.shape = None
        self.addr = {}
        self.profile_calls = []
        self.set_shape_calls = 0

    def set_optimization_profile_async(self, index, stream_handle):
        assert stream_handle == 7
        self.profile_calls.append(index)

    def set_input_shape(self, name, shape):
        self.set_shape_calls += 1
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shape if name == "output" else self.shape

    def set_tensor_address(self, name, ptr):
        self.addr[name] = ptr

    def execute_async_v3(self, stream_handle):
        assert stream_handle == 7, "must run on our own non-default stream"
        n = int(np.prod(self.shape))
        src = FakeDevicePtr.heap[self.addr["input"]][:n]
        FakeDevicePtr.heap[self.addr["output"]][:n] = 255 - src
        return True


class FakeStream:
    handle = 7

    def __init__(self):
        self.syncs = 0

    def synchronize(self):
        self.syncs += 1


PROFILES = [((1, 64, 64, 3), (1, 360, 640, 3), (1, 1080, 1920, 3)),
            ((1, 8, 8, 3), (1, 32, 32, 3), (2, 64, 64, 3))]


def make_runner(profiles=PROFILES, **engine_kw):
    cuda, ctx, stream = FakeCuda(), FakeContext(), FakeStream()
    runner = bt.TrtRunner(fake_trt(), cuda, FakeEngine(profiles, **engine_kw), ctx, stream)
    return runner, cuda, ctx, stream


def test_runner_runs_and_allocates_once_per_shape():
    runner, cuda, ctx, stream = make_runner()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 100, 120, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (1, 96, 64, 3), dtype=np.uint8)
    assert np.array_equal(runner.run(a), 255 - a)
    assert len(cuda.allocs) == 2 and len(cuda.pinned) == 2
    assert np.array_equal(runner.run(a), 255 - a)
    assert len(cuda.allocs) == 2 and ctx.set_shape_calls == 1  # same shape: nothing re-done
    assert np.array_equal(runner.run(b), 255 - b)
    assert np.array_equal(runner.run(a), 255 - a)  # back to a cached shape: no new allocation
    assert len(cuda.allocs) == 4
    assert cuda.copies[:2] == ["htod", "dtoh"] and stream.syncs == 4
    assert runner.timings == {"h2d_ms": 1.5, "compute_ms": 1.5, "d2h_ms": 1.5, "gpu_ms": 4.5}


def test_runner_output_is_a_copy_not_the_reused_buffer():
    runner, *_ = make_runner()
    a = np.full((1, 64, 64, 3), 10, np.uint8)
    out1 = runner.run(a)
    runner.run(np.full((1, 64, 64, 3), 200, np.uint8))
    assert np.all(out1 == 245)


def test_profile_choice_switches_profile_and_names_max_size():
    runner, cuda, ctx, _ = make_runner()
    runner.run(np.zeros((1, 32, 32, 3), np.uint8))  # only profile 1 covers 32x32
    assert ctx.profile_calls == [1]
    runner.run(np.zeros((2, 40, 40, 3), np.uint8))  # batch 2 also profile 1
    runner.run(np.zeros((1, 720, 1280, 3), np.uint8))
    assert ctx.profile_calls == [1, 0]
    with pytest.raises(StyleEngineError, match="--max-size"):
        runner.run(np.zeros((1, 2160, 3840, 3), np.uint8))
    with pytest.raises(StyleEngineError, match="batch"):
        runner.run(np.zeros((3, 64, 64, 3), np.uint8))


def test_choose_profile_prefers_the_smallest_covering_profile():
    assert bt.choose_profile(PROFILES, (1, 64, 64, 3)) == 1
    assert bt.choose_profile(PROFILES, (1, 65, 64, 3)) == 0
    assert bt.shape_limits(PROFILES) == (8, 8, 1080, 1920)


def test_buffer_cache_is_bounded_and_frees_device_memory():
    runner, cuda, *_ = make_runner()
    for i in range(bt.MAX_SHAPES + 2):
        runner.run(np.zeros((1, 64 + 4 * i, 64, 3), np.uint8))
    assert len(runner.buffers) == bt.MAX_SHAPES
    assert sum(p.freed for p in cuda.allocs) == 4  # two evicted shapes x (input, output)
    runner.close()
    assert all(p.freed for p in cuda.allocs)


def test_plan_with_wrong_io_is_refused():
    with pytest.raises(StyleEngineError, match="uint8"):
        make_runner(dtype="FLOAT")
    with pytest.raises(StyleEngineError, match="I/O"):
        make_runner(names=("images", "output"))


def test_backend_reports_why_it_is_unavailable_here():
    ok, why = bt.TensorRTBackend.available()
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert not ok and "TensorRT" in why


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.skipif(not bt.TensorRTBackend.available()[0], reason="needs TensorRT, pycuda and an NVIDIA GPU")
def test_real_tensorrt_plan_runs(tiny_bundle):
    from styleengine.engine.bundle import load_bundle

    with bt.TensorRTBackend(load_bundle(tiny_bundle)) as be:
        x = np.random.default_rng(0).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
        y = be.infer(x)
        assert y.shape == x.shape and y.dtype == np.uint8
