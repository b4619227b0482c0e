"""Parity of an exported ONNX model with the torch network, measured with ONNX Runtime on the CPU.

Note: ONNX Runtime's CPU provider runs FP16 graphs by inserting casts to FP32 around each node, so an FP16
check here covers weight and inter-layer rounding but not FP16 accumulation or overflow inside kernels; the
overflow analysis is benchmarks/fp16_overflow.py (torch half-precision simulation).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from .onnx_export import uint8_model

# Odd sizes on purpose: the graph pads to a multiple of 4 and crops back.
DEFAULT_SIZES: tuple[tuple[int, int, int], ...] = ((1, 37, 53), (2, 64, 48), (1, 8, 11))
# Allowed max |difference| in uint8 levels. FP32: rounding of x.5 values can flip by one level.
TOLERANCE = {"fp32": 1, "fp16": 4}


def frames(sizes: Iterable[tuple[int, int, int]], seed: int = 0):
    """Deterministic test frames: smooth gradients + noise (more image-like than pure noise)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for n, h, w in sizes:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255.0 / max(w - 1, 1), yy * 255.0 / max(h - 1, 1), np.full((h, w), 128.0)], -1)
        noise = rng.normal(0, 40, (n, h, w, 3))
        yield np.clip(base[None] + noise, 0, 255).astype(np.uint8)


def onnx_parity(onnx_path: str | os.PathLike, ckpt, *, sizes=DEFAULT_SIZES, precision: str = "fp32") -> dict[str, Any]:
    """Run the ONNX model (ORT CPU) and the torch network on the same frames; report diffs in uint8 levels."""
    import numpy as np
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    ref = uint8_model(ckpt)
    worst, results = 0, []
    for x in frames(sizes):
        with torch.no_grad():
            want = ref(torch.from_numpy(x)).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        if got.shape != want.shape or got.dtype != np.uint8:
            raise AssertionError(f"ONNX output {got.dtype} {got.shape} != torch {want.dtype} {want.shape}")
        d = np.abs(got.astype(np.int16) - want.astype(np.int16))
        results.append({"shape": list(x.shape), "max_abs_diff": int(d.max()), "mean_abs_diff": round(float(d.mean()), 5)})
        worst = max(worst, int(d.max()))
    tol = TOLERANCE[precision]
    return {"precision": precision, "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider",
            "max_abs_diff": worst, "tolerance": tol, "ok": worst <= tol, "sizes": results}
