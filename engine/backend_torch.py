"""torch backend: runs the bundle's model.pt directly. The reference every other backend is checked against.

CPU: FP32 eager. CUDA: FP16 weights and activations in channels_last (tensor-core friendly), InstanceNorm
statistics in FP32 (0-255 scale activations overflow FP16 when squared), and one CUDA graph per input shape
(captured in prepare(), or when a shape comes the second time), so a video frame costs one graph replay instead
of ~60 kernel launches from Python. cuDNN autotuning is switched on only around this backend's own calls, and
FP32 on CUDA runs true FP32 (TF32 off), so nothing leaks into other code in the process.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any, Iterable

import numpy as np

from styleengine.core.errors import StyleEngineError
from styleengine.core.hostinfo import cuda_device_count

from .backend import Backend, ShapeLimits, module_available
from .loaders import Loader

# Each captured graph pins its static buffers; bound the number of shapes kept alive.
MAX_CUDA_GRAPHS = 8
GPU_MAX_PIXELS = 7680 * 4320


def fp32_instance_norms(model):
    """Wrap every InstanceNorm2d so it normalizes in FP32 and returns the input dtype."""
    import torch
    from torch import nn

    class Fp32InstanceNorm(nn.Module):
        def __init__(self, inner: nn.InstanceNorm2d):
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.float()).to(x.dtype)

    for name, child in list(model.named_children()):
        if isinstance(child, nn.InstanceNorm2d):
            setattr(model, name, Fp32InstanceNorm(child))
        else:
            fp32_instance_norms(child)
    return model


def half_convs(model):
    """The shipped FP16 numerics: convs in FP16, InstanceNorms in FP32 with their FP32 affine params."""
    import torch

    model = fp32_instance_norms(model)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.half()
    return model


def uint8_forward(model, x_u8, dtype, channels_last: bool):
    """uint8 NHWC -> model -> uint8 NHWC, all on the model's device (same math as the ONNX wrapper)."""
    import torch

    x = x_u8.permute(0, 3, 1, 2).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
    y = model(x)
    return y.float().clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@contextlib.contextmanager
def cuda_numerics(precision: str):
    """cuDNN autotuning for this backend's fixed shapes, and TF32 only where FP32 was not asked for; restored
    on exit so the process's other torch code keeps its settings."""
    import torch

    matmul = torch.backends.cuda.matmul.allow_tf32
    with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False,
                                    allow_tf32=precision != "fp32"):
        torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = matmul


class TorchBackend(Backend):
    name = "torch"
    devices = ("cpu", "cuda")
    precisions = {"cpu": ("fp32",), "cuda": ("fp16", "fp32")}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not module_available("torch"):
            return False, "torch is not installed (pip install 'styleengine[train]')"
        return True, "CUDA" if cuda_device_count() else "CPU only"

    def __init__(self, bundle, *, device: str | None = None, precision: str | None = None,
                 model: Loader | None = None, cuda_graphs: bool = True):
        if device is None:
            device = "cuda" if cuda_device_count() else "cpu"
        super().__init__(bundle, device=device, precision=precision, model=model)
        self.cuda_graphs = cuda_graphs
        self._model = None
        self._graphs: OrderedDict[tuple, tuple] = OrderedDict()
        self._seen: dict[tuple, int] = {}
        self._events = None
        self._timings: dict[str, float] | None = None

    def _load(self) -> None:
        try:
            import torch

            from styleengine.core.checkpoint import load_checkpoint
        except ImportError:
            raise StyleEngineError("the torch backend needs torch (pip install 'styleengine[train]')") from None
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise StyleEngineError("the torch backend cannot use CUDA here (CPU-only torch build or no GPU); "
                                   "use --device cpu or install a CUDA build of torch")
        model = load_checkpoint(self.model()).build_model("cpu")
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self._channels_last = dev.type == "cuda"
        if self.precision == "fp16":
            model = half_convs(model)
        model = model.to(dev)
        if self._channels_last:
            model = model.to(memory_format=torch.channels_last)
        self._model = model.eval()
        self._dev = dev

    def _numerics(self):
        return cuda_numerics(self.precision) if self._dev.type == "cuda" else contextlib.nullcontext()

    def prepare(self, shapes: Iterable[tuple[int, ...]]) -> None:
        """Capture the CUDA graphs for these (N, H, W, 3) shapes now, outside any timed loop."""
        self.load()
        if self._dev.type != "cuda" or not self.cuda_graphs:
            return
        import torch

        with torch.inference_mode(), self._numerics():
            for shape in shapes:
                self._graph(tuple(shape))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if not batch.flags.writeable:  # torch.from_numpy wants writable memory
            batch = batch.copy()
        with torch.inference_mode(), self._numerics():
            if self._dev.type == "cpu":
                return uint8_forward(self._model, torch.from_numpy(batch), self._dtype, False).numpy()
            self._timings = None  # set again by this call's events: never a previous call's, even if this one fails
            # Capture a graph only for a shape seen before: video frames repeat their shape, a folder of photos
            # mostly does not (capture + warm-up would cost more than it saves).
            if not self.cuda_graphs or (batch.shape not in self._graphs and self._seen.get(batch.shape, 0) < 1):
                self._seen[batch.shape] = self._seen.get(batch.shape, 0) + 1
                if len(self._seen) > 64:
                    self._seen.clear()
                return self._eager(batch)
            return self._replay(batch)

    def _eager(self, batch: np.ndarray) -> np.ndarray:
        import torch

        ev = self._event_list()
        ev[0].record()
        x = torch.from_numpy(batch).pin_memory().to(self._dev, non_blocking=True)
        ev[1].record()
        y = uint8_forward(self._model, x, self._dtype, True)
        ev[2].record()
        out = y.cpu()
        ev[3].record()
        torch.cuda.current_stream(self._dev).synchronize()
        self._record_timings(ev)
        return out.numpy()

    def _event_list(self) -> list:
        import torch

        if self._events is None:
            self._events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
        return self._events

    def _record_timings(self, ev: list) -> None:
        h2d, comp, d2h = (ev[i].elapsed_time(ev[i + 1]) for i in range(3))
        self._timings = {"h2d_ms": h2d, "compute_ms": comp, "d2h_ms": d2h, "gpu_ms": h2d + comp + d2h}

    def _graph(self, key: tuple) -> tuple:
        """The per-shape CUDA graph with its static pinned host and device buffers, captured on first need."""
        import torch

        entry = self._graphs.get(key)
        if entry is not None:
            self._graphs.move_to_end(key)
            return entry
        if len(self._graphs) >= MAX_CUDA_GRAPHS:
            self._graphs.popitem(last=False)
        host_in = torch.empty(key, dtype=torch.uint8).pin_memory()
        dev_in = torch.empty(key, dtype=torch.uint8, device=self._dev)
        stream = torch.cuda.Stream(self._dev)
        stream.wait_stream(torch.cuda.current_stream(self._dev))
        with torch.cuda.stream(stream):  # warm-up outside the graph (cuDNN autotune, lazy init)
            for _ in range(2):
                uint8_forward(self._model, dev_in, self._dtype, True)
        torch.cuda.current_stream(self._dev).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            dev_out = uint8_forward(self._model, dev_in, self._dtype, True)
        host_out = torch.empty(tuple(dev_out.shape), dtype=torch.uint8).pin_memory()
        entry = (graph, host_in, dev_in, dev_out, host_out)
        self._graphs[key] = entry
        return entry

    def _replay(self, batch: np.ndarray) -> np.ndarray:
        import torch

        graph, host_in, dev_in, dev_out, host_out = self._graph(batch.shape)
        ev = self._event_list()
        host_in.numpy()[...] = batch
        ev[0].record()
        dev_in.copy_(host_in, non_blocking=True)
        ev[1].record()
        graph.replay()
        ev[2].record()
        host_out.copy_(dev_out, non_blocking=True)
        ev[3].record()
        torch.cuda.current_stream(self._dev).synchronize()
        self._record_timings(ev)
        return host_out.numpy().copy()

    def last_timings(self) -> dict[str, float] | None:
        """h2d / compute / d2h / total GPU ms of the last CUDA infer (CUDA events, eager or graph), else None."""
        return self._timings

    def shape_limits(self) -> ShapeLimits:
        return ShapeLimits(max_pixels=GPU_MAX_PIXELS) if str(self.device).startswith("cuda") else ShapeLimits()

    def _close(self) -> None:
        self._graphs.clear()
        self._model = None
        self._timings = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if str(self.device).startswith("cuda"):
            d["cuda_graphs"] = self.cuda_graphs
        return d
