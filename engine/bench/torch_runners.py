"""Torch runners the grid times beside the backends: the eager FP32 baseline and the torch speed variants.

All take the backends' contract (uint8 NHWC host array in, uint8 NHWC host array out), so their rows compare
like for like: upload, convert, network, clamp/round, download. On CUDA every iteration records CUDA events on
the current stream around the three stages, so copies are reported apart from compute.

Variants (CUDA: FP16; CPU: FP32, where FP16 convolutions are emulated):
  baseline   eager, NCHW contiguous, pageable host memory (what a plain PyTorch script does)
  fp16-cl    eager, channels_last, pinned host buffers, non-blocking copies
  cudagraph  fp16-cl captured once per shape in a CUDA graph and replayed (CUDA only)
  compile    fp16-cl through torch.compile (inductor), compiled once per shape (dynamic=False)
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

VARIANTS = ("fp16-cl", "cudagraph", "compile")
BASELINE_VARIANT = "eager-fp32"


class TorchRunner:
    uses_torch_allocator = True

    def __init__(self, model: Any, device: str, variant: str = BASELINE_VARIANT, *, compile_mode: str | None = None):
        import torch

        if variant not in (BASELINE_VARIANT, *VARIANTS):
            raise ValueError(f"unknown torch variant {variant!r}")
        self.torch = torch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.variant = variant
        if variant == "cudagraph" and not self.cuda:
            raise RuntimeError("CUDA graphs need a CUDA device")
        self.baseline = variant == BASELINE_VARIANT
        self.dtype = torch.float32 if self.baseline or not self.cuda else torch.float16
        self.precision = "fp32" if self.dtype == torch.float32 else "fp16"
        self.channels_last = not self.baseline
        self.pinned = self.cuda and not self.baseline
        model = copy.deepcopy(model).eval().to(self.device, self.dtype)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        for p in model.parameters():
            p.requires_grad_(False)
        self.model = model
        self.fn = self._compute
        if variant == "compile":
            self.fn = torch.compile(self._compute, dynamic=False, mode=compile_mode)
        self._shape: tuple[int, ...] | None = None
        self._graph = None
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(4)] if self.cuda else None
        self._stages: dict[str, float] | None = None

    # -- the work -------------------------------------------------------------------------------------
    def _compute(self, x_u8: Any) -> Any:
        x = x_u8.permute(0, 3, 1, 2)  # NHWC bytes viewed as NCHW: already channels_last in memory
        x = x.contiguous() if not self.channels_last else x
        y = self.model(x.to(self.dtype))
        y = y.clamp(0, 255).add_(0.5).to(self.torch.uint8)  # +0.5 then truncate = round half up on >= 0
        return y.permute(0, 2, 3, 1).contiguous()

    def prepare(self, batch: np.ndarray) -> None:
        """Per-shape setup outside the timed loop: buffers, graph capture, compilation (runs the work once)."""
        torch = self.torch
        if self._shape == batch.shape:
            return
        self._shape = batch.shape
        self._graph = None
        if self.pinned:
            self._host_in = torch.empty(batch.shape, dtype=torch.uint8, pin_memory=True)
            self._host_out = torch.empty(batch.shape, dtype=torch.uint8, pin_memory=True)
        if self.cuda:
            self._dev_in = torch.empty(batch.shape, dtype=torch.uint8, device=self.device)
        with torch.inference_mode():
            if self.variant == "cudagraph":
                self._dev_in.copy_(torch.from_numpy(batch))
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):  # warm cuDNN's algorithm choice before capture
                    for _ in range(3):
                        self._compute(self._dev_in)
                torch.cuda.current_stream(self.device).wait_stream(side)
                self._graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self._graph):
                    self._graph_out = self._compute(self._dev_in)
                torch.cuda.synchronize(self.device)
            else:
                self.run(batch)

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        if self._shape != batch.shape:
            self.prepare(batch)
        src = torch.from_numpy(batch)
        with torch.inference_mode():
            if not self.cuda:
                self._stages = None
                return self.fn(src).numpy()
            e0, e1, e2, e3 = self._events
            stream = torch.cuda.current_stream(self.device)
            if self.pinned:
                self._host_in.copy_(src)  # host memcpy into page-locked memory (in wall time, not GPU time)
                e0.record(stream)
                self._dev_in.copy_(self._host_in, non_blocking=True)
            else:
                e0.record(stream)
                self._dev_in.copy_(src)  # pageable: staged by the driver
            e1.record(stream)
            if self._graph is not None:
                self._graph.replay()
                out = self._graph_out
            else:
                out = self.fn(self._dev_in)
            e2.record(stream)
            if self.pinned:
                self._host_out.copy_(out, non_blocking=True)
                e3.record(stream)
                e3.synchronize()
                result = self._host_out.numpy().copy()  # the caller owns its result, as with every backend
            else:
                result = out.cpu().numpy()
                e3.record(stream)
                e3.synchronize()
            self._stages = {"h2d_ms": e0.elapsed_time(e1), "compute_ms": e1.elapsed_time(e2),
                            "d2h_ms": e2.elapsed_time(e3), "gpu_ms": e0.elapsed_time(e3)}
            return result

    def last_timings(self) -> dict[str, float] | None:
        return self._stages

    def close(self) -> None:
        # Drop every device buffer before emptying the cache, so the next runner starts from a clean pool.
        self._graph = self._graph_out = self._dev_in = self._host_in = self._host_out = None
        self.fn = None
        self.model = None
        self._shape = None
        if self.cuda:
            self.torch.cuda.empty_cache()
