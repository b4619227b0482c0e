"""The physical limit of the transformation network: arithmetic and memory traffic per pixel, and the floors they set.

    .venv/bin/python benchmarks/limits.py [--tflops 798] [--tbps 3.0] [--out F]
    .venv/bin/python benchmarks/limits.py --smoke [--out F]     # counts on a 32x32 pass; temporary output

Arithmetic: MACs per pixel from styleengine.core.network.macs_per_pixel (convolutions only), 2 FLOP per MAC.
Memory: bytes read + written per pixel by an UNFUSED eager forward pass, counted exactly by intercepting every
aten op on a 256x256 input (views excluded; weights included), for FP32 and FP16 activations. A fully fused
implementation could approach the uint8 in + out traffic (6 bytes per pixel); unfused eager pays the counted one.
The floors = work / rate, for the rates given (defaults: the H100 of this workplace's device machines as recorded in
its notes: 798 TFLOP/s dense BF16 matmul, 3.0 TB/s device copy; replace them with benchmarks/gpu_peak.py output).
Writes results/limits.json (or --out; --smoke writes to --out or a temporary file) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920), "4k": (2160, 3840)}
RESULTS = Path(__file__).resolve().parent / "results" / "limits.json"


def eager_bytes_per_pixel(config, dtype, side: int = 256) -> float:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    from styleengine.core.network import TransformerNet

    def storages(x):
        return {t.untyped_storage().data_ptr() for t in tree_flatten(x)[0] if isinstance(t, torch.Tensor)}

    def nbytes(x):
        return sum(t.numel() * t.element_size() for t in tree_flatten(x)[0] if isinstance(t, torch.Tensor))

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not (storages(out) & storages((args, kwargs))):  # a view moves no bytes
                Count.total += nbytes((args, kwargs)) + nbytes(out)
            return out

    model = TransformerNet(config).eval().to(dtype)
    x = (torch.rand(1, 3, side, side) * 255).to(dtype)
    with torch.inference_mode(), Count():
        model(x)
    return Count.total / (side * side)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tflops", type=float, default=798.0, help="dense FP16/BF16 rate, TFLOP/s")
    ap.add_argument("--tbps", type=float, default=3.0, help="device memory bandwidth, TB/s (read + write)")
    ap.add_argument("--rate-source", default="this workplace's H100 notes (KINDS.md, 2026-11-13): 8192^3 bf16 "
                                              "matmul 798 TFLOP/s, device-to-device copy ~3.0 TB/s")
    ap.add_argument("--side", type=int, default=256, help="side of the square input the traffic is counted on")
    ap.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run proving the script works: counts on a 32x32 pass; writes to --out or a "
                         "temporary file")
    args = ap.parse_args(argv)
    if args.smoke:
        args.side = 32
        args.out = args.out or Path(tempfile.mkdtemp(prefix="limits_smoke_")) / "limits.json"
    args.out = args.out or RESULTS
    import torch

    from styleengine.core.fsutil import atomic_path
    from styleengine.core.network import PRESETS, macs_per_pixel

    out = {"rates": {"tflops": args.tflops, "tbps": args.tbps, "source": args.rate_source},
           "traffic_counted_on": [args.side, args.side], "presets": {}}
    print(f"rates: {args.tflops} TFLOP/s, {args.tbps} TB/s ({args.rate_source})")
    print(f"{'preset':<8} {'MAC/px':>8} {'size':<6} {'GFLOP/frame':>11} {'compute floor ms':>16} "
          f"{'eager fp16 GB':>13} {'memory floor ms':>15} {'bound':>7}")
    for name, cfg in PRESETS.items():
        macs = macs_per_pixel(cfg)
        bpp32 = eager_bytes_per_pixel(cfg, torch.float32, args.side)
        bpp16 = eager_bytes_per_pixel(cfg, torch.float16, args.side) if _half_ok() else bpp32 / 2
        entry = {"macs_per_pixel": macs, "flop_per_pixel": 2 * macs,
                 "eager_bytes_per_pixel": {"fp32": round(bpp32, 1), "fp16": round(bpp16, 1)},
                 "fused_min_bytes_per_pixel": 6, "sizes": {}}
        for label, (h, w) in SIZES.items():
            px = h * w
            flop = 2 * macs * px
            t_c = flop / (args.tflops * 1e12) * 1e3
            t_m = bpp16 * px / (args.tbps * 1e12) * 1e3
            entry["sizes"][label] = {"gflop_per_frame": round(flop / 1e9, 1), "compute_floor_ms": round(t_c, 3),
                                     "eager_fp16_gb_per_frame": round(bpp16 * px / 1e9, 2),
                                     "eager_fp16_memory_floor_ms": round(t_m, 3),
                                     "fused_memory_floor_ms": round(6 * px / (args.tbps * 1e12) * 1e3, 4)}
            print(f"{name:<8} {macs:>8,.0f} {label:<6} {flop / 1e9:>11.1f} {t_c:>16.3f} {bpp16 * px / 1e9:>13.2f} "
                  f"{t_m:>15.3f} {'memory' if t_m > t_c else 'compute':>7}")
        out["presets"][name] = entry
        print(f"{'':<8} eager bytes/pixel: {bpp32:,.0f} (fp32), {bpp16:,.0f} (fp16); fused minimum 6 (uint8 in + out)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _half_ok() -> bool:
    """FP16 convolutions run on this CPU build (recent torch has them); else fp16 bytes = fp32 / 2."""
    import torch

    try:
        torch.nn.functional.conv2d(torch.ones(1, 1, 4, 4, dtype=torch.float16), torch.ones(1, 1, 3, 3, dtype=torch.float16))
        return True
    except RuntimeError:
        return False


if __name__ == "__main__":
    sys.exit(main())
