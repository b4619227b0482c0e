"""The TensorRT backend's pure-Python logic, driven by a fake `tensorrt` module and a fake CudaRuntime.

The fake engine follows the TRT 10/11 name-based API (num_io_tensors, get_tensor_name/mode/dtype,
get_tensor_profile_shape, set_optimization_profile_async, set_input_shape, get_tensor_shape, set_tensor_address,
execute_async_v3). The fake runtime implements engine/cuda_runtime.py's CudaRuntime interface with device memory
of its own and a stream whose work (copies, the "engine", event records) runs only when the stream is
synchronized, as on a GPU. The "engine" inverts pixels through that device memory, so a wrong buffer, address,
copy order or a missing synchronize shows up in the output. Real TensorRT runs are marked `tensorrt`.
"""

from __future__ import annotations

import contextlib
import json
import types
from pathlib import Path

import numpy as np
import pytest

from styleengine.core.bundle import Bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.plan_sidecar import RuntimeInfo
from styleengine.core.shapes import Profile
from styleengine.engine import backend_tensorrt as bt
from styleengine.engine import loaders
from styleengine.engine.backend import ShapeLimits, create_backend
from styleengine.engine.cuda_runtime import CudaRuntime

# ------------------------------------------------------------------------------------------------ fakes


class FakeDevicePtr:
    def __init__(self, addr, nbytes):
        self.addr, self.nbytes, self.freed = addr, nbytes, False

    def __int__(self):
        return self.addr


class FakeStream:
    def __init__(self, handle):
        self.handle = handle
        self.pending = []  # work queued on the stream; runs at synchronize()
        self.syncs = 0


class FakeEvent:
    def __init__(self):
        self.t = None


class FakeCudaRuntime(CudaRuntime):
    """Device memory in a dict, async work queued on the stream until synchronize()."""

    name = "fake"

    def __init__(self):
        self.heap: dict[int, np.ndarray] = {}
        self.next_addr = 0x1000
        self.allocs: list[FakeDevicePtr] = []
        self.pinned_arrays: list[np.ndarray] = []
        self.freed_pinned: list[np.ndarray] = []
        self.copies: list[str] = []
        self.streams: list[FakeStream] = []
        self.clock = 0.0
        self.active = 0
        self.activations = 0
        self.closed = False

    @contextlib.contextmanager
    def activate(self):
        self.active += 1
        self.activations += 1
        try:
            yield
        finally:
            self.active -= 1

    def stream(self):
        s = FakeStream(7 + len(self.streams))
        self.streams.append(s)
        return s

    def stream_handle(self, stream):
        return stream.handle

    def synchronize(self, stream):
        stream.syncs += 1
        while stream.pending:
            stream.pending.pop(0)()

    def pinned(self, shape, dtype):
        a = np.empty(shape, dtype)
        self.pinned_arrays.append(a)
        return a

    def free_pinned(self, array):
        assert any(array is p for p in self.pinned_arrays) and not any(array is p for p in self.freed_pinned)
        self.freed_pinned.append(array)

    def alloc(self, nbytes):
        p = FakeDevicePtr(self.next_addr, nbytes)
        self.heap[p.addr] = np.zeros(nbytes, np.uint8)
        self.next_addr += nbytes + 256
        self.allocs.append(p)
        return p

    def free(self, buffer):
        assert not buffer.freed, "double free"
        buffer.freed = True

    def _check_pinned(self, host):
        assert any(host is p for p in self.pinned_arrays), "host side of an async copy must be page-locked"
        assert not any(host is p for p in self.freed_pinned), "copy through a freed page-locked buffer"

    def _device(self, dev, nbytes):
        assert not dev.freed, "copy through freed device memory"
        assert nbytes <= dev.nbytes, "copy larger than the device buffer"
        return self.heap[int(dev)]

    def htod_async(self, dst, src, stream):
        self._check_pinned(src)
        mem = self._device(dst, src.nbytes)
        self.copies.append("htod")
        # reads the host buffer when the stream runs it, as a real async copy does
        stream.pending.append(lambda: mem.__setitem__(slice(0, src.nbytes), src.reshape(-1).view(np.uint8)))

    def dtoh_async(self, dst, src, stream):
        self._check_pinned(dst)
        mem = self._device(src, dst.nbytes)
        self.copies.append("dtoh")
        stream.pending.append(lambda: dst.reshape(-1).view(np.uint8).__setitem__(slice(None), mem[: dst.nbytes]))

    def event(self):
        return FakeEvent()

    def record(self, event, stream):
        assert stream is self.streams[0], "events must be recorded on the runner's own stream"

        def stamp():
            self.clock += 1.5
            event.t = self.clock

        stream.pending.append(stamp)

    def elapsed_ms(self, start, end):
        assert start.t is not None and end.t is not None, "elapsed time of an event that has not completed"
        return end.t - start.t

    def close(self):
        self.closed = True


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
    """Output = 255 - input, computed from the bound device addresses when the stream runs (like an enqueue)."""

    def __init__(self, cuda, profile_ok=True):
        self.cuda = cuda
        self.shape = None
        self.addr = {}
        self.profile_calls = []
        self.set_shape_calls = 0
        self.profile_ok = profile_ok
        self.output_shape = None  # override what get_tensor_shape answers
        self.execute_ok = True

    def set_optimization_profile_async(self, index, stream_handle):
        assert stream_handle == 7
        self.profile_calls.append(index)
        return self.profile_ok

    def set_input_shape(self, name, shape):
        self.set_shape_calls += 1
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        assert name == "output"
        return self.output_shape or self.shape

    def set_tensor_address(self, name, ptr):
        self.addr[name] = ptr

    def execute_async_v3(self, stream_handle):
        assert stream_handle == 7, "must run on our own non-default stream"
        if not self.execute_ok:
            return False
        n = int(np.prod(self.shape))
        src, dst = self.cuda.heap[self.addr["input"]], self.cuda.heap[self.addr["output"]]
        self.cuda.streams[0].pending.append(lambda: dst.__setitem__(slice(0, n), 255 - src[:n]))
        return True


# (batch, H, W, C) as TensorRT reports them for the NHWC input
PROFILES = [((1, 64, 64, 3), (1, 360, 640, 3), (1, 1080, 1920, 3)),
            ((1, 8, 8, 3), (1, 32, 32, 3), (2, 64, 64, 3))]
PROFILE_OBJS = [Profile((1, 64, 64), (1, 360, 640), (1, 1080, 1920)), Profile((1, 8, 8), (1, 32, 32), (2, 64, 64))]


def make_runner(profiles=PROFILES, profile_ok=True, **engine_kw):
    cuda = FakeCudaRuntime()
    ctx = FakeContext(cuda, profile_ok=profile_ok)
    runner = bt.TrtRunner(fake_trt(), cuda, FakeEngine(profiles, **engine_kw), ctx)
    return runner, cuda, ctx, cuda.streams[0]


# ------------------------------------------------------------------------------------------------ TrtRunner


def test_runner_runs_and_allocates_once_per_shape():
    runner, cuda, ctx, stream = make_runner()
    assert runner.profiles == PROFILE_OBJS and runner.handle == 7
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 100, 120, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (1, 96, 64, 3), dtype=np.uint8)
    assert np.array_equal(runner.run(a), 255 - a)
    assert len(cuda.allocs) == 2 and len(cuda.pinned_arrays) == 2
    assert np.array_equal(runner.run(a), 255 - a)
    assert len(cuda.allocs) == 2 and ctx.set_shape_calls == 1  # same shape: nothing re-done
    assert np.array_equal(runner.run(b), 255 - b)
    assert np.array_equal(runner.run(a), 255 - a)  # back to a cached shape: no new allocation
    assert len(cuda.allocs) == 4 and ctx.set_shape_calls == 3  # ...but the context is told the shape again
    assert cuda.copies[:2] == ["htod", "dtoh"] and stream.syncs == 4 and not stream.pending
    assert runner.timings == {"h2d_ms": 1.5, "compute_ms": 1.5, "d2h_ms": 1.5, "gpu_ms": 4.5}
    assert len(cuda.streams) == 1  # one stream for the runner's life


def test_runner_output_is_a_copy_not_the_reused_buffer():
    runner, *_ = make_runner()
    a = np.full((1, 64, 64, 3), 10, np.uint8)
    out1 = runner.run(a)
    runner.run(np.full((1, 64, 64, 3), 200, np.uint8))
    assert np.all(out1 == 245)


def test_profile_choice_switches_profile_and_names_max_size():
    runner, _, ctx, _ = make_runner()
    runner.run(np.zeros((1, 32, 32, 3), np.uint8))  # only profile 1 covers 32x32
    assert ctx.profile_calls == [1]
    out = runner.run(np.full((2, 40, 40, 3), 3, np.uint8))  # batch 2 also profile 1
    assert out.shape == (2, 40, 40, 3) and np.all(out == 252)
    runner.run(np.zeros((1, 720, 1280, 3), np.uint8))
    assert ctx.profile_calls == [1, 0]
    with pytest.raises(StyleEngineError, match="--max-size"):
        runner.run(np.zeros((1, 2160, 3840, 3), np.uint8))
    with pytest.raises(StyleEngineError, match="batch"):
        runner.run(np.zeros((3, 64, 64, 3), np.uint8))


def test_refused_profile_switch_is_a_one_line_error():
    runner, cuda, ctx, _ = make_runner(profile_ok=False)
    with pytest.raises(StyleEngineError, match="optimization profile 1") as info:
        runner.run(np.zeros((1, 32, 32, 3), np.uint8))
    assert "\n" not in str(info.value)
    assert runner.profile == 0 and ctx.set_shape_calls == 0 and not cuda.allocs  # nothing bound to a wrong profile
    ctx.profile_ok = True
    a = np.full((1, 32, 32, 3), 9, np.uint8)
    assert np.array_equal(runner.run(a), 255 - a) and ctx.profile_calls == [1, 1]  # switch retried


def test_choose_profile_prefers_the_smallest_covering_profile():
    assert bt.choose_profile(PROFILE_OBJS, (1, 64, 64, 3)) == 1
    assert bt.choose_profile(PROFILE_OBJS, (1, 65, 64, 3)) == 0
    assert bt.shape_limits(PROFILE_OBJS) == ShapeLimits(8, 8, 1080, 1920)
    with pytest.raises(StyleEngineError, match="largest 1920x1080"):
        bt.choose_profile(PROFILE_OBJS, (1, 1200, 64, 3))


def test_profile_shapes_reads_batch_height_width():
    assert bt.profile_shapes(FakeEngine(PROFILES), "input") == PROFILE_OBJS


def test_buffer_cache_is_bounded_and_frees_device_memory():
    runner, cuda, *_ = make_runner()
    for i in range(bt.MAX_SHAPES + 2):
        runner.run(np.zeros((1, 64 + 4 * i, 64, 3), np.uint8))
    assert len(runner.buffers) == bt.MAX_SHAPES
    assert sum(p.freed for p in cuda.allocs) == 4  # two evicted shapes x (input, output)
    assert len(cuda.freed_pinned) == 4
    runner.close()
    assert all(p.freed for p in cuda.allocs) and len(cuda.freed_pinned) == len(cuda.pinned_arrays)


def test_failed_shape_change_does_not_leave_the_old_shape_bound():
    runner, _, ctx, _ = make_runner()
    a = np.full((1, 64, 80, 3), 1, np.uint8)
    runner.run(a)
    ctx.output_shape = (1, 10, 10, 3)  # a plan answering nonsense for the next shape
    with pytest.raises(StyleEngineError, match="output shape"):
        runner.run(np.zeros((1, 64, 96, 3), np.uint8))
    ctx.output_shape = None
    calls = ctx.set_shape_calls
    assert np.array_equal(runner.run(a), 255 - a)  # the context holds the other shape now: told again
    assert ctx.set_shape_calls == calls + 1 and ctx.shape == a.shape


def test_failed_execution_drains_the_stream_and_says_so():
    runner, _, ctx, stream = make_runner()
    ctx.execute_ok = False
    with pytest.raises(StyleEngineError, match="execute_async_v3"):
        runner.run(np.zeros((1, 64, 64, 3), np.uint8))
    assert not stream.pending and runner.timings is None  # the queued copy finished before buffers are reused


def test_prepare_binds_ahead_of_the_first_run():
    runner, cuda, ctx, _ = make_runner()
    runner.prepare([(1, 32, 32, 3), (1, 100, 100, 3)])
    assert len(cuda.allocs) == 4 and ctx.profile_calls == [1, 0]
    a = np.full((1, 100, 100, 3), 7, np.uint8)
    assert np.array_equal(runner.run(a), 255 - a) and len(cuda.allocs) == 4


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


# ----------------------------------------------------------------------------------- TensorRTBackend (fakes)


def fake_bundle(tmp_path, name="tiny.engine") -> Bundle:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model_fp16.onnx").write_bytes(b"fake onnx")
    manifest = {"style": {"name": "tiny"}, "tensorrt": {"profiles": [p.to_dict() for p in PROFILE_OBJS]}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return Bundle(folder, manifest)


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_backend_refuses_other_precisions_saying_it_runs_fp16(precision):
    with pytest.raises(StyleEngineError, match="runs fp16") as info:
        bt.TensorRTBackend(None, precision=precision)
    assert precision in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(StyleEngineError, match="runs fp16"):
        create_backend("tensorrt", None, device="cuda", precision=precision)


def test_backend_device_and_options(tmp_path):
    bundle = fake_bundle(tmp_path)
    be = bt.TensorRTBackend(bundle)
    assert (be.device, be.precision, be.index, be.model.device_index) == ("cuda:0", "fp16", 0, 0)
    be = bt.TensorRTBackend(bundle, device="cuda:1", precision="auto")
    assert (be.precision, be.index, be.model.device_index) == ("fp16", 1, 1)
    with pytest.raises(StyleEngineError, match="does not run on cpu"):
        bt.TensorRTBackend(bundle, device="cpu")
    with pytest.raises(StyleEngineError, match="CUDA runtime"):
        bt.TensorRTBackend(bundle, cuda_runtime="cupy")
    with pytest.raises(StyleEngineError, match="no option 'workspace'"):
        create_backend("tensorrt", bundle, workspace=1)


def test_available_for_checks_the_device_index(monkeypatch):
    monkeypatch.setattr(bt.TensorRTBackend, "available", classmethod(lambda cls: (True, "fake")))
    monkeypatch.setattr(bt, "cuda_device_count", lambda: 1)
    assert bt.TensorRTBackend.available_for(device="cuda:0") == (True, "fake")
    ok, why = bt.TensorRTBackend.available_for(device="cuda:1")
    assert not ok and "cuda:1" in why


class FakeTrtRuntime:
    def __init__(self, engine, created):
        self.engine, self.created = engine, created

    def deserialize_cuda_engine(self, blob):
        assert blob == b"PLAN"
        return self.engine


def install_fake_tensorrt(monkeypatch, engine, ctx_factory):
    trt = fake_trt()
    created = []

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    def runtime(logger):
        return FakeTrtRuntime(engine, created)

    def create_execution_context():
        ctx = ctx_factory()
        created.append(ctx)
        return ctx

    engine.create_execution_context = create_execution_context
    trt.Logger, trt.Runtime = Logger, runtime
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", trt)
    monkeypatch.setattr(bt.TensorRTBackend, "available", classmethod(lambda cls: (True, "fake")))
    monkeypatch.setattr(bt, "cuda_device_count", lambda: 2)
    return trt, created


def test_backend_runs_through_the_contract_with_fakes(tmp_path, monkeypatch):
    plan = tmp_path / "p.plan"
    plan.write_bytes(b"PLAN")
    cuda = FakeCudaRuntime()
    opened = []
    monkeypatch.setattr(bt, "open_runtime", lambda index, prefer: opened.append((index, prefer)) or cuda)
    _, created = install_fake_tensorrt(monkeypatch, FakeEngine(PROFILES), lambda: FakeContext(cuda))

    be = bt.TensorRTBackend(fake_bundle(tmp_path), device="cuda:1", model=lambda: plan, cuda_runtime="torch")
    with be:
        assert opened == [(1, "torch")]
        assert be.shape_limits() == ShapeLimits(8, 8, 1080, 1920) and be.max_batch_size() == 2
        x = np.random.default_rng(1).integers(0, 256, (2, 40, 48, 3), dtype=np.uint8)
        before = cuda.activations
        assert np.array_equal(be.infer(x), 255 - x)
        assert cuda.activations > before  # inference runs with our device current
        assert be.last_timings()["gpu_ms"] == 4.5
        be.prepare([(1, 100, 100, 3)])
        with pytest.raises(StyleEngineError, match="maximum of 2"):
            be.infer(np.zeros((3, 40, 40, 3), np.uint8))
        d = be.describe()
        assert d["plan"] == str(plan) and d["cuda_runtime"] == "fake" and d["precision"] == "fp16"
    assert len(created) == 1  # one execution context for the backend's life
    assert cuda.closed and all(p.freed for p in cuda.allocs) and be._runner is None and be._engine is None


def test_backend_load_failure_releases_the_cuda_runtime(tmp_path, monkeypatch):
    plan = tmp_path / "p.plan"
    plan.write_bytes(b"PLAN")
    cuda = FakeCudaRuntime()
    monkeypatch.setattr(bt, "open_runtime", lambda index, prefer: cuda)
    install_fake_tensorrt(monkeypatch, FakeEngine(PROFILES, dtype="FLOAT"), lambda: FakeContext(cuda))
    be = bt.TensorRTBackend(fake_bundle(tmp_path), model=lambda: plan)
    with pytest.raises(StyleEngineError, match="uint8"):
        be.load()
    assert cuda.closed and not be.loaded and be._cuda is None and be._engine is None and not cuda.streams


# ---------------------------------------------------------------------------------- TensorRTPlan loader


def test_tensorrt_plan_loader_uses_its_device_index(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    bundle = fake_bundle(tmp_path)
    asked, built = [], []
    rt = RuntimeInfo("10.13.3.9", "NVIDIA H100 80GB HBM3", "9.0")
    monkeypatch.setattr(loaders, "current_runtime", lambda trt, device: asked.append((trt, device)) or rt)

    def build_plans(onnx, out_dir, **kw):
        built.append((Path(onnx).name, kw))
        out = Path(out_dir) / "fp16.plan"
        out.write_bytes(b"PLAN")
        return [types.SimpleNamespace(plan=out)]

    monkeypatch.setattr(loaders, "_export", lambda name: types.SimpleNamespace(build_plans=build_plans))
    trt = object()
    loader = bt.TensorRTBackend(bundle, device="cuda:1").model
    assert isinstance(loader, loaders.TensorRTPlan) and loader.device_index == 1
    loader.trt = trt
    plan = loader()
    assert plan.read_bytes() == b"PLAN" and asked == [(trt, 1)]
    (name, kw), = built
    assert name == "model_fp16.onnx" and kw["device_index"] == 1 and kw["trt"] is trt
    assert kw["profiles"] == PROFILE_OBJS

    with pytest.raises(StyleEngineError, match="no TensorRT plan"):
        loaders.TensorRTPlan(bundle, device_index=1, build=False, trt=trt)()  # the plan has no sidecar
    monkeypatch.setattr(loaders, "current_runtime", lambda trt, device: None)
    with pytest.raises(StyleEngineError, match="cannot identify this GPU"):
        loaders.TensorRTPlan(bundle, device_index=3, trt=trt)()


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.skipif(not bt.TensorRTBackend.available()[0], reason="needs TensorRT, a CUDA binding and an NVIDIA GPU")
def test_real_tensorrt_plan_runs(tiny_bundle):
    from styleengine.core.bundle import load_bundle

    with bt.TensorRTBackend(load_bundle(tiny_bundle)) as be:
        x = np.random.default_rng(0).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
        y = be.infer(x)
        assert y.shape == x.shape and y.dtype == np.uint8
