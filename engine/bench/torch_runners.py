"""Torch runners the grid times beside the backends: the eager FP32 baseline and the torch speed variants.

All take the backends' contract (uint8 NHWC host array in, uint8 NHWC host array out), so their rows compare
like for like: upload, convert, network, clamp/round, download. On CUDA every iteration records CUDA events on
the current stream around the three stages, so copies are reported apart from compute.

Every row runs under the numerics the shipped torch backend uses (engine/backend_torch.py): the same uint8
forward (uint8_forward), cuDNN autotuning on for every row (cuda_numerics), and for FP16 the shipped model
(half_convs: FP16 convolutions, InstanceNorm statistics in FP32). Only the execution differs between rows.

Variants (CUDA: FP16 unless named otherwise; CPU: FP32, where FP16 convolutions are emulated):
  baseline   eager FP32, NCHW contiguous, pageable host memory, TF32 OFF (true FP32: the speed-up reference)
  tf32       the baseline with TF32 on (what a plain PyTorch script gets by default for convolutions; CUDA only)
  fp16-cl    eager, channels_last, pinned host buffers, non-blocking copies
  cudagraph  fp16-cl captured once per shape in a CUDA graph and replayed (CUDA only)
  compile    fp16-cl through torch.compile (inductor), compiled once per shape (dynamic=False)
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..backend_torch import cuda_numerics, fp32_instance_norms, half_convs, uint8_forward

VARIANTS = ("tf32", "fp16-cl", "cudagraph", "compile")
BASELINE_VARIANT = "eager-fp32"
CUDA_ONLY = {"cudagraph": "CUDA graphs need a CUDA device", "tf32": "TF32 is a CUDA (Ampere or newer) mode"}


def numerics_of(variant: str, cuda: bool) -> str:
    """The precision name cuda_numerics() gets for a row: 'fp32' turns TF32 off, anything else allows it."""
    if variant == BASELINE_VARIANT:
        return "fp32"
    if variant == "tf32":
        return "tf32"
    return "fp16" if cuda else "fp32"


def variant_model(model: Any, variant: str, *, half: bool) -> Any:
    """A copy of `model` as the row runs it (on the CPU; the caller moves it).

    baseline / tf32: the network in FP32, untouched. Other variants: the shipped torch backend's model, i.e.
    half_convs (FP16 convs, FP32 InstanceNorm wrappers) when `half`, else FP32 with the same InstanceNorm
    wrappers (a no-op in FP32, so a CPU row runs the same module structure as a GPU row).
    """
    m = copy.deepcopy(model).eval().float()
    if variant in (BASELINE_VARIANT, "tf32"):
        return m
    return half_convs(m) if half else fp32_instance_norms(m)


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
        if variant in CUDA_ONLY and not self.cuda:
            raise RuntimeError(CUDA_ONLY[variant])
        self.baseline = variant == BASELINE_VARIANT
        fp32_row = variant in (BASELINE_VARIANT, "tf32") or not self.cuda
        self.dtype = torch.float32 if fp32_row else torch.float16
        self.numerics = numerics_of(variant, self.cuda)
        self.precision = "tf32" if variant == "tf32" else ("fp32" if fp32_row else "fp16")
        self.channels_last = variant not in (BASELINE_VARIANT, "tf32")
        self.pinned = self.cuda and self.channels_last
        model = variant_model(model, variant, half=not fp32_row).to(self.device)
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
        return uint8_forward(self.model, x_u8, self.dtype, self.channels_last)

    def _numerics(self):
        """cuDNN autotuning on and TF32 as the row asks, around everything the row runs (prepare included, so
        the algorithms cuDNN picks, the graph captured and the code compiled are the ones timed). Applied on a
        CPU too, where the flags have no effect but can be read."""
        return cuda_numerics(self.numerics)

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
        with torch.inference_mode(), self._numerics():
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
                return
        self.run(batch)

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        if self._shape != batch.shape:
            self.prepare(batch)
        src = torch.from_numpy(batch)
        with torch.inference_mode(), self._numerics():
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
