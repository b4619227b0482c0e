"""GPU bookkeeping without a GPU: the torch backend's last_timings() after eager and graph calls (a fake `torch`
stands in for CUDA), and the device-memory figure of non-torch rows (a fake NVML)."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import types
from collections import OrderedDict

import numpy as np
import pytest

from styleengine.engine.bench import memory
from styleengine.engine.bench.memory import DevicePeak
from styleengine.engine.stylizer import Stylizer
from tests.engine.video.helpers import _NoModel, fake_bundle

# ------------------------------------------------------------------------------------ torch backend timings


class FakeTensor:
    """numpy behind the handful of tensor methods the torch backend's CUDA paths call."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def pin_memory(self):
        return self

    def to(self, *args, **kwargs):
        for x in args:
            if isinstance(x, type) and issubclass(x, np.generic):
                return FakeTensor(self.a.astype(x))
        return self  # a device

    def permute(self, *axes):
        return FakeTensor(self.a.transpose(axes))

    def contiguous(self, memory_format=None):
        return FakeTensor(np.ascontiguousarray(self.a))

    def float(self):
        return FakeTensor(self.a.astype(np.float32))

    def clamp_(self, lo, hi):
        np.clip(self.a, lo, hi, out=self.a)
        return self

    def round_(self):
        np.round(self.a, out=self.a)
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.a

    def copy_(self, other, non_blocking=False):
        self.a[...] = other.a
        return self

    @property
    def shape(self):
        return self.a.shape


class FakeClock:
    """CUDA events stamped from a script: each record() takes the next tick (ms)."""

    def __init__(self):
        self.ticks: list[float] = []

    def event(self, enable_timing=False):
        clock = self

        class Event:
            t = None

            def record(self, stream=None):
                self.t = clock.ticks.pop(0)

            def elapsed_time(self, other):
                return other.t - self.t

        return Event()


def fake_torch(clock: FakeClock) -> types.ModuleType:
    t = types.ModuleType("torch")
    t.float16, t.float32, t.uint8 = np.float16, np.float32, np.uint8
    t.channels_last = "channels_last"
    t.from_numpy = FakeTensor
    t.inference_mode = contextlib.nullcontext
    stream = types.SimpleNamespace(synchronize=lambda: None)
    t.cuda = types.SimpleNamespace(Event=clock.event, current_stream=lambda device=None: stream)
    matmul = types.SimpleNamespace(allow_tf32=False)
    t.backends = types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=matmul),
                                       cudnn=types.SimpleNamespace(flags=lambda **kw: contextlib.nullcontext()))
    return t


class FakeGraph:
    def __init__(self, dev_in, dev_out):
        self.dev_in, self.dev_out = dev_in, dev_out

    def replay(self):
        self.dev_out.a[...] = 255 - self.dev_in.a


def cuda_backend_with_fake_torch(monkeypatch, graph_shapes):
    """A loaded TorchBackend on 'cuda' whose model is 255 - x, with CUDA graphs already captured for
    `graph_shapes`; every `import torch` inside the backend gets the fake."""
    pytest.importorskip("torch")  # the real one, for torch.device; the backend then runs on the fake
    import torch as real_torch

    from styleengine.engine.backend_torch import TorchBackend

    be = TorchBackend(fake_bundle("fake-cuda"), device="cuda", precision="fp16", model=_NoModel())
    be._model = lambda x: FakeTensor(255.0 - x.a)
    be._dtype, be._channels_last, be._dev = np.float16, True, real_torch.device("cuda:0")
    be._graphs = OrderedDict()
    for shape in graph_shapes:
        dev_in, dev_out = FakeTensor(np.zeros(shape, np.uint8)), FakeTensor(np.zeros(shape, np.uint8))
        be._graphs[shape] = (FakeGraph(dev_in, dev_out), FakeTensor(np.zeros(shape, np.uint8)), dev_in, dev_out,
                             FakeTensor(np.zeros(shape, np.uint8)))
    be.loaded = True
    clock = FakeClock()
    monkeypatch.setitem(sys.modules, "torch", fake_torch(clock))
    return be, clock


def test_last_timings_belong_to_the_last_call_eager_or_graph(monkeypatch):
    graph_shape, new_shape = (1, 8, 12, 3), (1, 10, 14, 3)
    be, clock = cuda_backend_with_fake_torch(monkeypatch, [graph_shape])
    x_graph = np.full(graph_shape, 7, np.uint8)
    x_new = np.full(new_shape, 9, np.uint8)

    clock.ticks = [10.0, 20.0, 40.0, 70.0]  # graph replay: h2d 10, compute 20, d2h 30
    np.testing.assert_array_equal(be.infer(x_graph), 255 - x_graph)
    assert be.last_timings() == {"h2d_ms": 10.0, "compute_ms": 20.0, "d2h_ms": 30.0, "gpu_ms": 60.0}

    clock.ticks = [0.0, 1.0, 3.0, 6.0]  # a shape seen for the first time runs eagerly: h2d 1, compute 2, d2h 3
    np.testing.assert_array_equal(be.infer(x_new), 255 - x_new)
    assert new_shape not in be._graphs  # really the eager path
    assert be.last_timings() == {"h2d_ms": 1.0, "compute_ms": 2.0, "d2h_ms": 3.0, "gpu_ms": 6.0}  # not the replay's

    clock.ticks = [100.0, 100.5, 101.5, 103.0]  # and back to the graph
    be.infer(x_graph)
    assert be.last_timings() == {"h2d_ms": 0.5, "compute_ms": 1.0, "d2h_ms": 1.5, "gpu_ms": 3.0}

    # A call that fails leaves no timings of an earlier call behind.
    clock.ticks = []
    with pytest.raises(IndexError):
        be.infer(np.zeros((1, 12, 16, 3), np.uint8))
    assert be.last_timings() is None

    # What the Stylizer reports per call (video stats, live overlay) is the same call's figures.
    st = Stylizer.for_backend(be)
    clock.ticks = [0.0, 2.0, 6.0, 12.0]
    st.stylize_batch(np.zeros((1, 14, 18, 3), np.uint8))
    assert st.last_timings["compute_ms"] == 4.0 and st.last_timings["gpu_ms"] == 12.0


# ------------------------------------------------------------------------------------ device memory figure


class FakeNVML(types.ModuleType):
    """pynvml with a settable memory level; per-process figures can be hidden (containers)."""

    def __init__(self, *, per_process: bool = True):
        super().__init__("pynvml")
        self.level = 100 * 2**20
        self.device_used = 1000 * 2**20
        self.per_process = per_process
        self.calls = 0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("handle", index)

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        self.calls += 1
        used = self.level if self.per_process else None
        return [types.SimpleNamespace(pid=os.getpid() + 1, usedGpuMemory=5),
                types.SimpleNamespace(pid=os.getpid(), usedGpuMemory=used)]

    def nvmlDeviceGetMemoryInfo(self, handle):
        return types.SimpleNamespace(used=self.device_used + self.level)


@pytest.fixture
def nvml(monkeypatch):
    fake = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(DevicePeak, "_floor", {})
    return fake


def wait_for_calls(fake, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    start = fake.calls
    while fake.calls < start + n and time.monotonic() < deadline:
        time.sleep(0.002)


def test_non_torch_rows_report_a_sampled_peak_labelled_as_such(nvml):
    dev = DevicePeak("cuda:0", torch_allocator=False, interval_ms=2)
    dev.start()
    nvml.level = 900 * 2**20  # a transient high (workspace during the loop) ...
    wait_for_calls(nvml, 5)
    nvml.level = 200 * 2**20  # ... gone by the time the loop ends
    wait_for_calls(nvml, 2)
    dev.sample()
    out = dev.stop()
    assert out["device_peak_mib"] == 900.0  # the figure after the loop would have said 200
    scope = out["device_mem_scope"]
    assert "peak" in scope and "sampled every 2 ms" in scope and "this process" in scope
    assert "can be missed" in scope  # honest about what sampling cannot see
    assert not dev._sampler.thread.is_alive()


def test_hidden_per_process_figures_fall_back_to_device_wide_growth(monkeypatch):
    fake = FakeNVML(per_process=False)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(DevicePeak, "_floor", {})
    fake.level = 0
    DevicePeak.record_floor("cuda:0")  # before anything loads: 1000 MiB used by others
    dev = DevicePeak("cuda:0", torch_allocator=False, interval_ms=2)
    fake.level = 300 * 2**20
    dev.start()
    time.sleep(0.02)
    out = dev.stop()
    assert out["device_peak_mib"] == 300.0 and "device-wide" in out["device_mem_scope"]


def test_no_nvml_is_said_and_cpu_rows_have_no_device_figure(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    dev = DevicePeak("cuda:0", torch_allocator=False)
    dev.start()
    dev.sample()
    assert dev.stop() == {"device_peak_mib": None, "device_mem_scope": "unreadable (no NVML)"}
    cpu = DevicePeak("cpu", torch_allocator=False)
    cpu.start()
    assert cpu.stop() == {"device_peak_mib": None, "device_mem_scope": None}


def test_a_row_that_fails_leaves_no_sampler_running(nvml):
    dev = DevicePeak("cuda:0", torch_allocator=False, interval_ms=2)
    dev.start()  # ... and the row raises before sample()/stop(): the grid just drops the object
    thread = dev._sampler.thread
    assert thread.is_alive()
    del dev
    gc.collect()
    thread.join(timeout=2)
    assert not thread.is_alive()


def test_memory_module_doc_says_what_the_figures_are():
    assert "sampl" in memory.__doc__ and "lower bound" in memory.__doc__


# ------------------------------------------------------------------------------------ the same on a real GPU


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs torch with CUDA and an NVIDIA GPU")
def test_real_cuda_timings_follow_each_call(tiny_checkpoint, tmp_path):
    import json
    import shutil

    from styleengine.core.bundle import BUNDLE_FORMAT, CHECKPOINT, MANIFEST, load_bundle
    from styleengine.engine.backend_torch import TorchBackend

    folder = tmp_path / "t.engine"
    folder.mkdir()
    shutil.copy2(tiny_checkpoint, folder / CHECKPOINT)
    (folder / MANIFEST).write_text(json.dumps({"format": BUNDLE_FORMAT, "style": {"name": "tiny"}, "preset": "custom",
                                               "arch": {"preset": "custom", "widths": [4, 8, 16], "blocks": 1}}))
    with TorchBackend(load_bundle(folder), device="cuda", precision="fp16") as be:
        a, b = np.zeros((2, 64, 96, 3), np.uint8), np.zeros((1, 48, 80, 3), np.uint8)
        be.prepare([a.shape])  # graph captured now, outside any timing
        assert a.shape in be._graphs
        be.infer(a)
        replay = be.last_timings()
        assert replay and replay["gpu_ms"] > 0
        be.infer(b)  # first sight of this shape: eager, timed by its own events
        eager = be.last_timings()
        assert eager and eager["gpu_ms"] > 0 and eager is not replay and b.shape not in be._graphs


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs torch with CUDA and an NVIDIA GPU")
def test_real_nvml_sampler_sees_a_transient_allocation():
    pytest.importorskip("pynvml")
    import torch

    dev = DevicePeak("cuda:0", torch_allocator=False, interval_ms=5)
    DevicePeak.record_floor("cuda:0")
    torch.zeros(1, device="cuda")  # a context first
    dev.start()
    if dev._sampler is None:
        pytest.skip("NVML unreadable here")
    x = torch.empty(2 * 2**30, dtype=torch.uint8, device="cuda")
    x.fill_(1)
    torch.cuda.synchronize()
    time.sleep(0.1)
    del x
    torch.cuda.empty_cache()
    time.sleep(0.05)
    dev.sample()
    out = dev.stop()
    assert out["device_peak_mib"] >= 2048 and "sampled every 5 ms" in out["device_mem_scope"], out
