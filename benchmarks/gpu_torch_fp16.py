"""torch on CUDA, interleaved: the torch backend as shipped (FP16, channels_last, FP32 InstanceNorm, a CUDA graph
per shape) vs eager FP32 with TF32 OFF (the bench baseline's runner), at 720p and 1080p; plus how far the FP16
output is from FP32.

    python benchmarks/gpu_torch_fp16.py --output torch_fp16.json [--iters 30] [--smoke]

Run by benchmarks/gpu.sh (step torch-fp16), through its import shim. A cross-check of the grid's rows by a
second method: the two paths alternate call by call, so clock or load drift hits both alike. Timing is wall
clock per call of the uint8 host-array API (copies included). Random-weight johnson (speed does not depend on
weights; the output spread makes the difference columns meaningful).
--smoke: CPU, tiny sizes, the shipped backend in FP32 (checks the code paths; not a measurement).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--preset", default="johnson")
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--smoke", action="store_true", help="CPU dry run at tiny sizes (not a measurement)")
    args = ap.parse_args(argv)

    import torch

    from styleengine.core.bundle import CHECKPOINT
    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.engine.backend_torch import TorchBackend
    from styleengine.engine.bench.source import make_random_bundle
    from styleengine.engine.bench.torch_runners import BASELINE_VARIANT, TorchRunner
    from styleengine.engine.environment import environment

    device, precision, sizes = "cuda", "fp16", SIZES
    if args.smoke:
        device, precision, sizes, args.iters, args.preset = "cpu", "fp32", {"48x64": (48, 64)}, 3, "fast"
    elif not torch.cuda.is_available():
        print("error: needs CUDA torch and an NVIDIA GPU", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="gpu_fp16."))
    bundle = make_random_bundle(args.preset, tmp / "random.engine", need_onnx=False)
    model = load_checkpoint(bundle.path / CHECKPOINT).build_model("cpu")
    eager = TorchRunner(model, device, BASELINE_VARIANT)  # eager FP32, NCHW, TF32 off, cuDNN autotuning on
    ours = TorchBackend(bundle, device=device, precision=precision).load()
    rng = np.random.default_rng(0)
    rows = {}
    try:
        for label, (h, w) in sizes.items():
            x = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
            eager.prepare(x)
            ours.prepare([x.shape])
            for fn in (eager.run, ours.infer):
                for _ in range(3):
                    fn(x)
            times: dict[str, list[float]] = {"eager_fp32_tf32_off": [], f"torch_backend_{precision}": []}
            for _ in range(args.iters):  # interleaved
                for name, fn in zip(times, (eager.run, ours.infer)):
                    if device == "cuda":
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    fn(x)
                    times[name].append(time.perf_counter() - t)
            ref, out = eager.run(x).astype(int), ours.infer(x).astype(int)
            med = {k: statistics.median(v) for k, v in times.items()}
            rows[label] = {k: {"median_ms": round(v * 1000, 3), "fps": round(1 / v, 1)} for k, v in med.items()}
            names = list(med)
            rows[label]["speedup"] = round(med[names[0]] / med[names[1]], 2)
            rows[label][f"{precision}_vs_fp32"] = {"max_abs_diff": int(np.abs(out - ref).max()),
                                                   "mean_abs_diff": round(float(np.abs(out - ref).mean()), 3)}
            print(label, json.dumps(rows[label]), flush=True)
    finally:
        ours.close()
        eager.close()
    result = {"benchmark": "gpu_torch_fp16", "smoke": args.smoke, "model": f"{args.preset} (random weights)",
              "iters": args.iters, "device": device,
              "note": "wall clock per call incl. host<->device copies of uint8 frames; calls interleaved",
              "results": rows, "environment": environment()}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
