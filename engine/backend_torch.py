"""torch backend: runs the bundle's model.pt directly. The reference every other backend is checked against.

CPU: FP32 eager. CUDA: FP16 weights and activations in channels_last (tensor-core friendly), InstanceNorm
statistics in FP32 (0-255 scale activations overflow FP16 when squared), and one CUDA graph per input shape seen
twice, so a video frame costs one graph replay instead of ~60 kernel launches from Python.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from styleengine.errors import StyleEngineError

from .backend import Backend, module_available
from .hardware import cuda_device_count

# Each captured graph pins its static buffers; bound the number of shapes kept alive.
MAX_CUDA_GRAPHS = 8


def _fp32_instance_norms(model):
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
            _fp32_instance_norms(child)
    return model


def _uint8_forward(model, x_u8, dtype, channels_last: bool):
    """uint8 NHWC -> model -> uint8 NHWC, all on the model's device (same math as the ONNX wrapper)."""
    import torch

    x = x_u8.permute(0, 3, 1, 2).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
    y = model(x)
    return y.float().clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


class TorchBackend(Backend):
    name = "torch"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not module_available("torch"):
            return False, "torch is not installed (pip install 'styleengine[train]')"
        return True, "CUDA" if cuda_device_count() else "CPU only"

    def __init__(self, bundle, *, device=None, precision=None, cuda_graphs: bool = True, **options: Any):
        super().__init__(bundle, device=device, precision=precision, **options)
        self.cuda_graphs = cuda_graphs
        self._model = None
        self._graphs: OrderedDict[tuple, tuple] = OrderedDict()
        self._seen: dict[tuple, int] = {}
        self._events = None
        self._timings: dict[str, float] | None = None

    def load(self) -> "TorchBackend":
        if self.loaded:
            return self
        try:
            import torch
        except ImportError:
            raise StyleEngineError("the torch backend needs torch (pip install 'styleengine[train]')") from None
        from styleengine.train.checkpoint import load_checkpoint

        if self.device is None:
            self.device = "cuda" if cuda_device_count() and torch.cuda.is_available() else "cpu"
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise StyleEngineError("torch cannot use CUDA here (CPU-only torch build or no GPU)")
        if dev.type not in ("cpu", "cuda"):
            raise StyleEngineError(f"torch backend: unsupported device {self.device!r} (use cpu or cuda)")
        if self.precision is None:
            self.precision = "fp16" if dev.type == "cuda" else "fp32"
        if self.precision not in ("fp32", "fp16"):
            raise StyleEngineError(f"torch backend: unsupported precision {self.precision!r} (fp32 or fp16)")
        if self.precision == "fp16" and dev.type != "cuda":
            raise StyleEngineError("torch backend: fp16 needs CUDA; use fp32 on the CPU")
        ckpt_path = self.bundle.checkpoint
        if ckpt_path is None:
            raise StyleEngineError(f"{self.bundle.path}: bundle has no model.pt for the torch backend")
        model = load_checkpoint(ckpt_path).build_model("cpu")
        self._dtype = torch.float16 if self.precision == "fp16" else torch.float32
        self._channels_last = dev.type == "cuda"
        if self.precision == "fp16":
            # Convs to FP16; InstanceNorms keep their FP32 affine params exactly (no FP16 round trip).
            model = _fp32_instance_norms(model)
            for m in model.modules():
                if isinstance(m, torch.nn.Conv2d):
                    m.half()
        model = model.to(dev)
        if self._channels_last:
            model = model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True  # shapes are fixed per CUDA graph: autotune once, in warm-up
        self._model = model.eval()
        self._dev = dev
        self.loaded = True
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        batch = self._ready(batch)
        if not batch.flags.writeable:  # torch.from_numpy wants writable memory
            batch = batch.copy()
        with torch.inference_mode():
            if self._dev.type == "cpu":
                return _uint8_forward(self._model, torch.from_numpy(batch), self._dtype, False).numpy()
            # Capture a graph only for a shape seen before: video frames repeat their shape, a folder of photos
            # mostly does not (capture + warm-up would cost more than it saves).
            if not self.cuda_graphs or (batch.shape not in self._graphs and self._seen.get(batch.shape, 0) < 1):
                self._seen[batch.shape] = self._seen.get(batch.shape, 0) + 1
                if len(self._seen) > 64:
                    self._seen.clear()
                x = torch.from_numpy(batch).pin_memory().to(self._dev, non_blocking=True)
                return _uint8_forward(self._model, x, self._dtype, True).cpu().numpy()
            return self._replay(batch)

    def _replay(self, batch: np.ndarray) -> np.ndarray:
        """Per-shape CUDA graph: static pinned host and device buffers, captured once, replayed per call."""
        import torch

        key = batch.shape
        entry = self._graphs.get(key)
        if entry is None:
            if len(self._graphs) >= MAX_CUDA_GRAPHS:
                self._graphs.popitem(last=False)
            host_in = torch.empty(key, dtype=torch.uint8).pin_memory()
            dev_in = torch.empty(key, dtype=torch.uint8, device=self._dev)
            stream = torch.cuda.Stream(self._dev)
            stream.wait_stream(torch.cuda.current_stream(self._dev))
            with torch.cuda.stream(stream):  # warm-up outside the graph (cuDNN autotune, lazy init)
                for _ in range(2):
                    _uint8_forward(self._model, dev_in, self._dtype, True)
            torch.cuda.current_stream(self._dev).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                dev_out = _uint8_forward(self._model, dev_in, self._dtype, True)
            host_out = torch.empty(tuple(dev_out.shape), dtype=torch.uint8).pin_memory()
            entry = (graph, host_in, dev_in, dev_out, host_out)
            self._graphs[key] = entry
        else:
            self._graphs.move_to_end(key)
        graph, host_in, dev_in, dev_out, host_out = entry
        if self._events is None:
            self._events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
        ev = self._events
        host_in.numpy()[...] = batch
        ev[0].record()
        dev_in.copy_(host_in, non_blocking=True)
        ev[1].record()
        graph.replay()
        ev[2].record()
        host_out.copy_(dev_out, non_blocking=True)
        ev[3].record()
        torch.cuda.current_stream(self._dev).synchronize()
        h2d, comp, d2h = (ev[i].elapsed_time(ev[i + 1]) for i in range(3))
        self._timings = {"h2d_ms": h2d, "compute_ms": comp, "d2h_ms": d2h, "gpu_ms": h2d + comp + d2h}
        return host_out.numpy().copy()

    def last_timings(self) -> dict[str, float] | None:
        """h2d / compute / d2h / total GPU ms of the last CUDA-graph infer (CUDA events), else None."""
        return self._timings

    def close(self) -> None:
        self._graphs.clear()
        self._model = None
        super().close()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        if self._model is not None and self._dev.type == "cuda":
            d["cuda_graphs"] = self.cuda_graphs
        return d
