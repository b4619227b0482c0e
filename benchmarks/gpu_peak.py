"""Measured ceilings of the GPU this runs on: dense matrix-multiply TFLOP/s (FP32, TF32, FP16) and copy bandwidth.

    python3 benchmarks/gpu_peak.py --out peak.json

The physical-limit note in benchmarks/README.md divides the best benchmark row's TFLOP/s by these (datasheet
rates are leads; measured ones are what the card gives today). CUDA events, warm-up, median of repeats,
random operands (never zeros).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys


def _time_ms(fn, reps: int = 10, warmup: int = 3) -> float:
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def measure(n: int = 8192) -> dict:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_peak.py: no CUDA device")
    out = {"device": torch.cuda.get_device_name(), "n": n}
    props = torch.cuda.get_device_properties(0)
    out["multiprocessors"] = props.multi_processor_count
    out["memory_gib"] = round(props.total_memory / 2**30, 1)
    prev_tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        for label, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                                   ("fp16", torch.float16, False), ("bf16", torch.bfloat16, False)):
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = torch.randn(n, n, device="cuda", dtype=dtype)
            b = torch.randn(n, n, device="cuda", dtype=dtype)
            ms = _time_ms(functools.partial(torch.matmul, a, b))
            out[f"matmul_{label}_tflops"] = round(2 * n**3 / (ms / 1e3) / 1e12, 1)
            a = b = None  # free before the next dtype
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev_tf32
    src = torch.randint(0, 255, (2**30,), device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    ms = _time_ms(lambda: dst.copy_(src))
    out["d2d_copy_tb_per_s"] = round(2 * src.numel() / (ms / 1e3) / 1e12, 2)  # bytes read + written
    host = torch.empty(2**28, dtype=torch.uint8).pin_memory()
    dev = torch.empty(2**28, dtype=torch.uint8, device="cuda")
    out["h2d_pinned_gb_per_s"] = round(host.numel() / (_time_ms(lambda: dev.copy_(host, non_blocking=True)) / 1e3) / 1e9, 1)
    out["d2h_pinned_gb_per_s"] = round(host.numel() / (_time_ms(lambda: host.copy_(dev, non_blocking=True)) / 1e3) / 1e9, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--n", type=int, default=8192)
    args = ap.parse_args()
    res = measure(args.n)
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
